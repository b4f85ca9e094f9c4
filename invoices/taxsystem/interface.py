"""What crosses the tax-system boundary: a submission, a result, the errors, the backend class.

Shaped after the invoicing service providers' APIs (the invoicing clouds of the big
tax-software vendors): submit under the caller's serial number, idempotently; then query the
result by that serial (or be called back).
"""

import datetime as dt
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


class TaxSystemError(Exception):
    """The tax system could not be asked or did not answer."""


class TaxSystemTransientError(TaxSystemError):
    """Worth asking again later: a timeout, a 5xx, a rate limit, the platform under maintenance."""


@dataclass(frozen=True)
class OriginalInvoice:
    """What the tax system needs to find the invoice and check the request."""

    code: str  # empty for a digital invoice
    number: str
    invoice_type: str  # InvoiceType: special or ordinary
    medium: str  # InvoiceMedium: paper or digital
    issued_on: dt.date  # in Asia/Shanghai
    buyer_name: str
    buyer_taxpayer_id: str
    amount: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class TaxSubmission:
    serial: str
    operation: str  # TaxOperation: void or red_letter
    original: OriginalInvoice
    reason_code: str  # ReversalReason
    buyer_certified: bool
    red_letter_form_number: str  # the buyer's form: 16 digits (paper), 20 (digital); or empty
    seller_files_form: bool  # the provider files the red-letter information form itself
    # Digital invoices: the buyer booked it or confirmed its use, so it must confirm the
    # red-letter confirmation form; or the buyer entered the form (its number above) and the
    # provider confirms it.
    buyer_booked: bool = False
    buyer_entered_form: bool = False


@dataclass(frozen=True)
class IssueSubmission:
    """An invoice to issue for an application, under our serial (idempotent)."""

    serial: str
    medium: str  # InvoiceMedium
    invoice_type: str  # InvoiceType
    buyer_name: str
    buyer_taxpayer_id: str
    buyer_address_phone: str
    buyer_bank_account: str
    seller_name: str
    amount: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class IssuedInvoice:
    """What the tax system issued: its numbers, the moment, and the file (digital invoices)."""

    code: str  # empty for a digital invoice
    number: str
    issued_at: dt.datetime
    document: bytes = b""
    document_name: str = ""


class ResultStatus(enum.StrEnum):
    PENDING = "pending"
    # Digital invoices: the red-letter confirmation form is entered and awaits the buyer.
    AWAITING_BUYER = "awaiting_buyer"
    DONE = "done"
    REFUSED = "refused"  # by the tax system: a fault to look into (the return fails)
    BUYER_REFUSED = "buyer_refused"  # the buyer refused the confirmation form
    EXPIRED = "expired"  # the buyer did not confirm it within 72 hours


# The buyer's answer ends the request but is no fault: the return ends, the customer may
# start again.
BUYER_DECLINED = (ResultStatus.BUYER_REFUSED, ResultStatus.EXPIRED)


@dataclass(frozen=True)
class RedLetterIssued:
    """The red-letter invoice as the tax system printed it."""

    code: str
    number: str
    issued_on: dt.date
    amount: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    red_letter_form_number: str = ""


@dataclass(frozen=True)
class TaxResult:
    serial: str
    status: ResultStatus
    voided_on: dt.date | None = None
    red_letter: RedLetterIssued | None = None
    error: str = ""
    form_number: str = ""  # AWAITING_BUYER, BUYER_REFUSED, EXPIRED: the confirmation form
    confirm_by: dt.datetime | None = None  # AWAITING_BUYER: the buyer's deadline

    @classmethod
    def pending(cls, serial: str) -> "TaxResult":
        return cls(serial=serial, status=ResultStatus.PENDING)

    @classmethod
    def refused(cls, serial: str, error: str) -> "TaxResult":
        return cls(serial=serial, status=ResultStatus.REFUSED, error=error)

    @classmethod
    def voided(cls, serial: str, on: dt.date) -> "TaxResult":
        return cls(serial=serial, status=ResultStatus.DONE, voided_on=on)

    @classmethod
    def reversed(cls, serial: str, red_letter: RedLetterIssued) -> "TaxResult":
        return cls(serial=serial, status=ResultStatus.DONE, red_letter=red_letter)

    @classmethod
    def awaiting_buyer(cls, serial: str, form_number: str, confirm_by: dt.datetime) -> "TaxResult":
        return cls(
            serial=serial,
            status=ResultStatus.AWAITING_BUYER,
            form_number=form_number,
            confirm_by=confirm_by,
        )

    @classmethod
    def buyer_declined(cls, serial: str, status: ResultStatus, form_number: str) -> "TaxResult":
        return cls(serial=serial, status=status, form_number=form_number)


@dataclass(frozen=True)
class IssueResult:
    serial: str
    status: ResultStatus  # PENDING, DONE or REFUSED
    invoice: IssuedInvoice | None = None
    error: str = ""


class TaxSystemBackend(ABC):
    name: ClassVar[str]
    # True when people act in the tax system and record the outcome here (nothing to poll).
    records_by_hand: ClassVar[bool] = False

    @property
    def poll_after_seconds(self) -> float:
        """How long after a submission (or a pending answer) a result is worth asking for."""
        return 30.0

    @abstractmethod
    def submit(self, submission: TaxSubmission) -> TaxResult:
        """Hand the request over; the same serial twice acts once. PENDING or a final result."""

    @abstractmethod
    def query(self, serial: str) -> TaxResult:
        """The result of the submission with this serial."""

    def issues_by_itself(self, medium: str) -> bool:
        """Whether ``issue`` issues invoices of ``medium`` without people (then an application
        is with the tax system from the moment it is made, and cannot be cancelled)."""
        return False

    def issue(self, submission: IssueSubmission) -> IssueResult:
        """Issue an invoice; the same serial twice issues once. PENDING when people issue it
        in the tax system and record it by hand."""
        return IssueResult(serial=submission.serial, status=ResultStatus.PENDING)

    # Only a simulation can stand in for the buyer on its own e-tax platform.
    simulates_buyer: ClassVar[bool] = False

    def simulate_buyer_decision(self, serial: str, *, confirmed: bool) -> None:
        """The buyer confirms or refuses the red-letter confirmation form (simulations only)."""
        raise NotImplementedError(f"{self.name} cannot act as the buyer")


BACKENDS = {
    "manual": "invoices.taxsystem.backends.manual.ManualTaxSystem",
    "sandbox": "invoices.taxsystem.backends.sandbox.SandboxTaxSystem",
}


def get_tax_system(name: str | None = None) -> TaxSystemBackend:
    """The backend called ``name`` (a request's own backend), by default the one named by
    ``settings.TAX_SYSTEM_BACKEND``: manual, sandbox or a dotted path."""
    name = name or settings.TAX_SYSTEM_BACKEND
    path = BACKENDS.get(name, name)
    if "." not in path:
        raise ImproperlyConfigured(
            f"TAX_SYSTEM_BACKEND={name!r} is unknown: use one of {', '.join(BACKENDS)} "
            "or the dotted path of a TaxSystemBackend subclass."
        )
    try:
        backend_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"TAX_SYSTEM_BACKEND={name!r} cannot be imported: {exc}"
        ) from exc
    if not (isinstance(backend_class, type) and issubclass(backend_class, TaxSystemBackend)):
        raise ImproperlyConfigured(f"TAX_SYSTEM_BACKEND={name!r} is not a TaxSystemBackend.")
    return backend_class()
