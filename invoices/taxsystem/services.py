"""Every write at the tax-system boundary: open a request, hand it to the backend, record the
outcome the tax system gave (R6, R7).

Recording an outcome is the one place where an invoice becomes voided or reversed and its
total goes back to the invoiceable amount: one transaction, under the invoice and customer
locks, at most once per invoice. The caller (``returns``) completes its own rows in the same
transaction.
"""

import datetime as dt
import uuid
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from invoices.exceptions import InvoiceNotReturnable, TaxOutcomeConflict, TaxOutcomeInvalid
from invoices.models import (
    Customer,
    Invoice,
    InvoiceState,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
    RedLetterInvoice,
    ReturnOutcome,
    ReversalReason,
    TaxOperation,
    TaxOutcomeCorrection,
    TaxRequest,
    TaxRequestState,
)
from invoices.rules import (
    invoice_is_returnable,
    tax_request_outcome_can_be_corrected,
    tax_request_outcome_can_be_recorded,
    void_or_reverse_decision,
)
from invoices.tax import breakdown_of
from invoices.taxsystem.interface import (
    OriginalInvoice,
    RedLetterIssued,
    ResultStatus,
    TaxResult,
    TaxSubmission,
    get_tax_system,
)

FORM_NUMBER_DIGITS = 16


def _local_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(ZoneInfo(settings.BUSINESS_TIME_ZONE)).date()


def _new_serial(now: dt.datetime) -> str:
    """Our request serial number: date and 16 random hex digits, upper case (24 characters)."""
    return f"RT{_local_date(now):%Y%m%d}{uuid.uuid4().hex[:14].upper()}"


def is_form_number(value: str) -> bool:
    """A red-letter information form number (paper) is 16 digits."""
    return len(value) == FORM_NUMBER_DIGITS and value.isdigit() and value.isascii()


@transaction.atomic
def tax_request_open(
    *,
    invoice_id: int,
    certified: bool,
    reason_code: str,
    buyer_form_number: str = "",
    now: dt.datetime | None = None,
) -> TaxRequest:
    """Decide void or reverse (R6) and open the request to the tax system for it.

    Idempotent: while the invoice has a pending request, that request is returned unchanged
    (a re-run task, a retry after a crash resubmits the same serial). An invoice voided or
    reversed once can never be requested again.
    """
    now = now or timezone.now()
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    if not invoice_is_returnable(invoice):
        raise InvoiceNotReturnable(
            _("Invoice %(invoice)s is %(state)s and cannot be voided or reversed again.")
            % {"invoice": invoice, "state": invoice.get_state_display().lower()}
        )
    live = TaxRequest.objects.filter(invoice=invoice, state=TaxRequestState.PENDING).first()
    if live is not None:
        return live
    if reason_code not in ReversalReason.values:
        raise TaxOutcomeInvalid(_("Choose the reason code of the reversal."))
    special = invoice.invoice_type == InvoiceType.SPECIAL
    certified = certified and special
    decision = void_or_reverse_decision(issued_at=invoice.issued_at, certified=certified, now=now)
    if certified and not is_form_number(buyer_form_number):
        raise TaxOutcomeInvalid(
            _("A certified special invoice is reversed only against the buyer's 16-digit form.")
        )
    voiding = decision == ReturnOutcome.VOIDED
    return TaxRequest.objects.create(
        serial=_new_serial(now),
        invoice=invoice,
        operation=TaxOperation.VOID if voiding else TaxOperation.RED_LETTER,
        reason_code=reason_code,
        buyer_certified=certified,
        red_letter_form_number=buyer_form_number if certified else "",
        seller_files_form=special and not certified and not voiding,
        backend=settings.TAX_SYSTEM_BACKEND,
    )


def tax_submission(tax_request: TaxRequest) -> TaxSubmission:
    """Everything the tax system (or finance, in it) needs to act on the request."""
    invoice = tax_request.invoice
    # The taxpayer ID printed on the invoice: the application's, not today's customer record.
    application = invoice.application
    taxpayer_id = application.taxpayer_id if application else invoice.customer.taxpayer_id
    figures = breakdown_of(invoice)
    return TaxSubmission(
        serial=tax_request.serial,
        operation=tax_request.operation,
        original=OriginalInvoice(
            code=invoice.code,
            number=invoice.number,
            invoice_type=invoice.invoice_type,
            issued_on=_local_date(invoice.issued_at),
            buyer_name=invoice.title,
            buyer_taxpayer_id=taxpayer_id,
            amount=figures.amount,
            tax_rate=figures.tax_rate,
            tax=figures.tax,
            total=figures.total,
        ),
        reason_code=tax_request.reason_code,
        buyer_certified=tax_request.buyer_certified,
        red_letter_form_number=tax_request.red_letter_form_number,
        seller_files_form=tax_request.seller_files_form,
    )


def tax_poll_after_seconds(*, backend_name: str | None = None) -> float | None:
    """When to ask the backend for a pending result; None when people record it by hand."""
    backend = get_tax_system(backend_name)
    return None if backend.records_by_hand else backend.poll_after_seconds


def tax_backends_answering_by_themselves(names: Iterable[str]) -> list[str]:
    """Of these backend names, those that answer on their own (nothing recorded by hand)."""
    return [name for name in set(names) if tax_poll_after_seconds(backend_name=name) is not None]


def tax_request_submit(*, tax_request_id: int) -> TaxResult:
    """Hand a pending request to the backend, outside any transaction (it may call out).

    Raises ``TaxSystemTransientError`` for the caller's retry policy. A request that is no
    longer pending is not submitted again: its recorded state is answered.
    """
    tax_request = TaxRequest.objects.select_related(
        "invoice__customer", "invoice__application"
    ).get(pk=tax_request_id)
    if tax_request.state != TaxRequestState.PENDING:
        return _recorded_result(tax_request)
    # The request stays with the backend it was opened under, whatever the setting says now.
    return get_tax_system(tax_request.backend).submit(tax_submission(tax_request))


def tax_request_query(*, tax_request_id: int) -> TaxResult:
    tax_request = TaxRequest.objects.get(pk=tax_request_id)
    if tax_request.state != TaxRequestState.PENDING:
        return _recorded_result(tax_request)
    return get_tax_system(tax_request.backend).query(tax_request.serial)


def _recorded_result(tax_request: TaxRequest) -> TaxResult:
    if tax_request.state == TaxRequestState.REFUSED:
        return TaxResult.refused(tax_request.serial, tax_request.error)
    if tax_request.operation == TaxOperation.VOID:
        assert tax_request.voided_on is not None  # noqa: S101 (a database constraint)
        return TaxResult.voided(tax_request.serial, tax_request.voided_on)
    # A reversal recorded before the boundary has its red-letter invoice on the invoice only.
    red = tax_request.red_letter_invoice or tax_request.invoice.red_letter_invoice
    if red is None:
        raise TaxOutcomeConflict(_("This reversal is recorded without its red-letter invoice."))
    return TaxResult.reversed(
        tax_request.serial,
        RedLetterIssued(
            code=red.code,
            number=red.number,
            issued_on=red.issued_on,
            amount=red.amount,
            tax_rate=red.tax_rate,
            tax=red.tax,
            total=red.total,
            red_letter_form_number=red.red_letter_form_number,
        ),
    )


def _lock(tax_request_id: int) -> tuple[TaxRequest, Invoice]:
    """Invoice, then customer, then the request: the lock order of every ledger write."""
    invoice_id = TaxRequest.objects.filter(pk=tax_request_id).values_list("invoice_id", flat=True)
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id.get())
    Customer.objects.select_for_update().filter(pk=invoice.customer_id).get()
    return TaxRequest.objects.select_for_update().get(pk=tax_request_id), invoice


@transaction.atomic
def tax_request_refuse(*, tax_request_id: int, error: str) -> TaxRequest:
    """The tax system refused the request for good: keep it, with the tax system's words."""
    tax_request, _invoice = _lock(tax_request_id)
    if tax_request.state == TaxRequestState.REFUSED:
        return tax_request
    if tax_request.state != TaxRequestState.PENDING:
        raise TaxOutcomeConflict()
    tax_request.state = TaxRequestState.REFUSED
    tax_request.error = error.strip() or _("Refused without a message.")
    tax_request.completed_at = timezone.now()
    tax_request.save(update_fields=["state", "error", "completed_at"])
    return tax_request


@transaction.atomic
def tax_outcome_record(*, tax_request_id: int, result: TaxResult, actor: User | None) -> TaxRequest:
    """Record what the tax system did (R6) and credit the invoiceable amount once (R7).

    Validated against the request and the original: a void on a date R6 allows; a red-letter
    invoice with a well-formed, unused code and number, a date on or after the original's and
    not in the future, and exactly the original's amount, tax and total negated. Recording the
    same outcome twice is a no-op; a different one is refused (correct it with an audited
    correction instead).
    """
    tax_request, invoice = _lock(tax_request_id)
    if result.status != ResultStatus.DONE:
        raise TaxOutcomeInvalid(_("Only a completed outcome can be recorded."))
    if tax_request.state == TaxRequestState.DONE:
        if _recorded_result(tax_request) == _with_serial(result, tax_request.serial):
            return tax_request
        raise TaxOutcomeConflict()
    if not tax_request_outcome_can_be_recorded(tax_request):
        raise TaxOutcomeConflict(_("The tax system refused this request; retry the return."))
    now = timezone.now()
    today = _local_date(now)
    issued_on = _local_date(invoice.issued_at)
    if tax_request.operation == TaxOperation.VOID:
        _check_void(result, issued_on=issued_on, today=today, certified=tax_request.buyer_certified)
        assert result.voided_on is not None  # noqa: S101 (checked just above)
        invoice.state = InvoiceState.VOIDED
        tax_request.voided_on = result.voided_on
    else:
        red = _check_red_letter(result, tax_request=tax_request, invoice=invoice, today=today)
        invoice.state = InvoiceState.REVERSED
        _red_letter_insert(red, invoice=invoice, tax_request=tax_request)
    invoice.state_changed_at = now
    invoice.save(update_fields=["state", "state_changed_at"])
    tax_request.state = TaxRequestState.DONE
    tax_request.completed_at = now
    tax_request.recorded_by = actor
    tax_request.save(update_fields=["state", "completed_at", "recorded_by", "voided_on"])
    LedgerEntry.objects.create(
        customer_id=invoice.customer_id,
        kind=LedgerKind.INVOICE_RETURNED,
        amount=invoice.total,
        invoice=invoice,
    )
    return tax_request


def _red_letter_insert(
    red: RedLetterIssued, *, invoice: Invoice, tax_request: TaxRequest
) -> RedLetterInvoice:
    """The red-letter invoice as the tax system printed it; a code and number already current
    on another red-letter invoice is refused in words (the database's unique constraint)."""
    try:
        with transaction.atomic():
            return RedLetterInvoice.objects.create(
                original=invoice,
                tax_request=tax_request,
                code=red.code,
                number=red.number,
                amount=red.amount,
                tax_rate=red.tax_rate,
                tax=red.tax,
                total=red.total,
                red_letter_form_number=red.red_letter_form_number,
                issued_on=red.issued_on,
            )
    except IntegrityError as exc:
        raise TaxOutcomeInvalid(
            _("Invoice %(code)s %(number)s is already recorded: check the number.")
            % {"code": red.code, "number": red.number}
        ) from exc


def _with_serial(result: TaxResult, serial: str) -> TaxResult:
    return TaxResult(
        serial=serial,
        status=result.status,
        voided_on=result.voided_on,
        red_letter=result.red_letter,
        error=result.error,
    )


def _check_void(result: TaxResult, *, issued_on: dt.date, today: dt.date, certified: bool) -> None:
    if result.voided_on is None or result.red_letter is not None:
        raise TaxOutcomeInvalid(_("This request is a void: enter the date it was voided."))
    on = result.voided_on
    if certified or (on.year, on.month) != (issued_on.year, issued_on.month):
        raise TaxOutcomeInvalid(
            _(
                "A paper invoice is voided only in its month of issue (%(month)s) and before "
                "certification: if the tax system refused the void, it needs a red-letter "
                "invoice."
            )
            % {"month": f"{issued_on:%Y-%m}"}
        )
    if on < issued_on or on > today:
        raise TaxOutcomeInvalid(
            _("The void date must be between the issue date %(issued)s and today.")
            % {"issued": issued_on.isoformat()}
        )


def _check_red_letter(
    result: TaxResult, *, tax_request: TaxRequest, invoice: Invoice, today: dt.date
) -> RedLetterIssued:
    red = result.red_letter
    if red is None or result.voided_on is not None:
        raise TaxOutcomeInvalid(_("This request is a red-letter invoice: enter its numbers."))
    code, number = red.code.strip(), red.number.strip()
    if not (code.isascii() and code.isdigit() and len(code) in (10, 12)):
        raise TaxOutcomeInvalid(_("The red-letter invoice code is 10 or 12 digits."))
    if not (number.isascii() and number.isdigit() and len(number) == 8):
        raise TaxOutcomeInvalid(_("The red-letter invoice number is 8 digits."))
    if Invoice.objects.filter(code=code, number=number).exists():
        raise TaxOutcomeInvalid(
            _("%(code)s %(number)s is a blue invoice already recorded: check the number.")
            % {"code": code, "number": number}
        )
    issued_on = _local_date(invoice.issued_at)
    if red.issued_on < issued_on or red.issued_on > today:
        raise TaxOutcomeInvalid(
            _("The red-letter invoice's date must be between %(issued)s and today.")
            % {"issued": issued_on.isoformat()}
        )
    expected = breakdown_of(invoice).negated()
    printed = (red.amount, red.tax_rate, red.tax, red.total)
    if printed != (expected.amount, expected.tax_rate, expected.tax, expected.total):
        raise TaxOutcomeInvalid(
            _(
                "A full red-letter invoice prints the original's figures negated: amount "
                "%(amount)s, tax rate %(rate)s, tax %(tax)s, total %(total)s."
            )
            % {
                "amount": expected.amount,
                "rate": f"{expected.tax_rate:.0%}",
                "tax": expected.tax,
                "total": expected.total,
            }
        )
    form_number = red.red_letter_form_number.strip()
    if tax_request.buyer_certified:
        if form_number and form_number != tax_request.red_letter_form_number:
            raise TaxOutcomeInvalid(
                _("The buyer's red-letter information form is %(number)s.")
                % {"number": tax_request.red_letter_form_number}
            )
        form_number = tax_request.red_letter_form_number
    elif tax_request.seller_files_form and not is_form_number(form_number):
        raise TaxOutcomeInvalid(
            _("Enter the 16-digit number of the red-letter information form the seller filed.")
        )
    elif not tax_request.seller_files_form and form_number:
        raise TaxOutcomeInvalid(_("An ordinary invoice is reversed without a form number."))
    return RedLetterIssued(
        code=code,
        number=number,
        issued_on=red.issued_on,
        amount=red.amount,
        tax_rate=red.tax_rate,
        tax=red.tax,
        total=red.total,
        red_letter_form_number=form_number,
    )


@transaction.atomic
def tax_outcome_correct(
    *,
    tax_request_id: int,
    actor: User,
    reason: str,
    code: str = "",
    number: str = "",
    issued_on: dt.date | None = None,
    voided_on: dt.date | None = None,
) -> TaxOutcomeCorrection:
    """Correct a recorded outcome that was mistyped: never an edit in place.

    A red-letter invoice is superseded by a new row with the corrected code, number or date
    (its figures cannot change: they are the original's negated); a void gets its corrected
    date. Each correction is a row saying who, when, why, before and after. Validated like the
    recording itself; the ledger is untouched (the credited total does not change).
    """
    reason = (reason or "").strip()
    if not reason:
        raise TaxOutcomeInvalid(_("Say why the outcome is corrected: it stays in the audit trail."))
    tax_request, invoice = _lock(tax_request_id)
    if not tax_request_outcome_can_be_corrected(tax_request):
        raise TaxOutcomeConflict(_("Only a recorded outcome can be corrected."))
    today = _local_date(timezone.now())
    if tax_request.operation == TaxOperation.VOID:
        if voided_on is None:
            raise TaxOutcomeInvalid(_("This request is a void: enter the date it was voided."))
        _check_void(
            TaxResult.voided(tax_request.serial, voided_on),
            issued_on=_local_date(invoice.issued_at),
            today=today,
            certified=tax_request.buyer_certified,
        )
        before = {"voided_on": f"{tax_request.voided_on:%Y-%m-%d}"}
        after = {"voided_on": voided_on.isoformat()}
        if before == after:
            raise TaxOutcomeInvalid(_("The correction changes nothing."))
        tax_request.voided_on = voided_on
        tax_request.save(update_fields=["voided_on"])
    else:
        old = tax_request.red_letter_invoice
        assert old is not None  # noqa: S101 (a done red-letter request has its invoice)
        new_code, new_number = (code or old.code).strip(), (number or old.number).strip()
        corrected = RedLetterIssued(
            code=new_code,
            number=new_number,
            issued_on=issued_on or old.issued_on,
            amount=old.amount,
            tax_rate=old.tax_rate,
            tax=old.tax,
            total=old.total,
            red_letter_form_number=old.red_letter_form_number,
        )
        before = _red_letter_fields(old.code, old.number, old.issued_on)
        after = _red_letter_fields(corrected.code, corrected.number, corrected.issued_on)
        if before == after:
            raise TaxOutcomeInvalid(_("The correction changes nothing."))
        checked = _check_red_letter(
            TaxResult.reversed(tax_request.serial, corrected),
            tax_request=tax_request,
            invoice=invoice,
            today=today,
        )
        old.superseded_at = timezone.now()
        old.save(update_fields=["superseded_at"])
        _red_letter_insert(checked, invoice=invoice, tax_request=tax_request)
    return TaxOutcomeCorrection.objects.create(
        tax_request=tax_request,
        before=before,
        after=after,
        reason=reason[:500],
        corrected_by=actor,
    )


def _red_letter_fields(code: str, number: str, issued_on: dt.date) -> dict[str, str]:
    return {"code": code, "number": number, "issued_on": issued_on.isoformat()}
