"""Reading the QR code printed on a Chinese VAT invoice, as a scanner types it. Pure: no queries.

The code holds comma-separated fields::

    01,04,033002600311,50000001,943.40,20261101,12345678901234567890,A1B2
    │  │  │            │        │      │        │                    └ a checksum (CRC)
    │  │  │            │        │      │        └ check code (校验码; empty on special invoices)
    │  │  │            │        │      └ issue date, YYYYMMDD
    │  │  │            │        └ amount before tax (金额)
    │  │  │            └ invoice number (8 digits; a 数电票's 20 digits)
    │  │  └ invoice code (10 or 12 digits; empty on a 数电票)
    │  └ invoice type (below)
    └ version (01)

A fully digitalized invoice (数电票) has no code and a 20-digit number:
``01,31,,24442000000000012345,1000.00,20261101,,ABCD``. Only paper is mailed: the parser says
what the code is; the post room refuses what is not paper (``InvoiceQr.is_paper``).
"""

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.exceptions import DomainError


class QrMedium:
    PAPER = "paper"
    ELECTRONIC = "electronic"  # the older e-invoices with a code (增值税电子发票): not mailed
    DIGITAL = "digital"  # 数电票: 20-digit number, no code, not mailed


# Invoice type → (medium, special?, name as the tax bureau writes it).
INVOICE_QR_TYPES: dict[str, tuple[str, bool, str]] = {
    "01": (QrMedium.PAPER, True, "增值税专用发票"),
    "04": (QrMedium.PAPER, False, "增值税普通发票"),
    "11": (QrMedium.PAPER, False, "增值税普通发票（卷式）"),
    "08": (QrMedium.ELECTRONIC, True, "增值税电子专用发票"),
    "10": (QrMedium.ELECTRONIC, False, "增值税电子普通发票"),
    "14": (QrMedium.ELECTRONIC, False, "增值税电子普通发票（通行费）"),
    "31": (QrMedium.DIGITAL, True, "电子发票（增值税专用发票）"),
    "32": (QrMedium.DIGITAL, False, "电子发票（普通发票）"),
}

_AMOUNT = re.compile(r"\d{1,12}(\.\d{1,2})?")
_PAPER_CODE = re.compile(r"\d{10}|\d{12}")
_PAPER_NUMBER = re.compile(r"\d{8}")
_DIGITAL_NUMBER = re.compile(r"\d{20}")
_CHECK_CODE = re.compile(r"[0-9A-Za-z]{0,32}")


class InvalidInvoiceQr(DomainError):
    default_message = gettext_lazy("This is not the QR code of a VAT invoice.")


@dataclass(frozen=True)
class InvoiceQr:
    version: str
    invoice_type: str
    code: str  # empty on a 数电票
    number: str
    amount: Decimal
    issued_on: dt.date
    check_code: str

    @property
    def medium(self) -> str:
        return INVOICE_QR_TYPES[self.invoice_type][0]

    @property
    def is_special(self) -> bool:
        return INVOICE_QR_TYPES[self.invoice_type][1]

    @property
    def is_paper(self) -> bool:
        """Only a paper invoice is mailed back (R4)."""
        return self.medium == QrMedium.PAPER

    @property
    def type_name(self) -> str:
        return INVOICE_QR_TYPES[self.invoice_type][2]


def looks_like_invoice_qr(value: str) -> bool:
    """A scan with commas (ASCII or full-width) is meant as an invoice's QR code."""
    return "," in unicodedata.normalize("NFKC", value or "")


def _refuse(detail: str) -> InvalidInvoiceQr:
    return InvalidInvoiceQr(
        _(
            "This invoice QR code cannot be read: %(detail)s Scan it again or type the code "
            "and number."
        )
        % {"detail": detail}
    )


def parse_invoice_qr(value: str) -> InvoiceQr:
    """The fields of an invoice's QR code, each checked; a malformed code is refused with what
    is wrong with it."""
    text = unicodedata.normalize("NFKC", value or "").strip()
    fields = [field.strip() for field in text.split(",")]
    if len(fields) > 7 and fields[-1] == "":
        fields = fields[:-1]  # a trailing comma
    if not 7 <= len(fields) <= 8:
        raise _refuse(_("it has %(count)d fields, a VAT invoice's has 8.") % {"count": len(fields)})
    version, invoice_type, code, number, amount, date, check_code = fields[:7]
    if version != "01":
        raise _refuse(_("version %(version)s is not known.") % {"version": version or "—"})
    if invoice_type not in INVOICE_QR_TYPES:
        raise _refuse(_("invoice type %(type)s is not known.") % {"type": invoice_type or "—"})
    medium = INVOICE_QR_TYPES[invoice_type][0]
    if medium == QrMedium.DIGITAL:
        if code or not _DIGITAL_NUMBER.fullmatch(number):
            raise _refuse(_("a fully digitalized invoice has no code and a 20-digit number."))
    else:
        if not _PAPER_CODE.fullmatch(code):
            raise _refuse(
                _("the invoice code %(code)s is not 10 or 12 digits.") % {"code": code or "—"}
            )
        if not _PAPER_NUMBER.fullmatch(number):
            raise _refuse(
                _("the invoice number %(number)s is not 8 digits.") % {"number": number or "—"}
            )
    if not _AMOUNT.fullmatch(amount):
        raise _refuse(_("the amount %(amount)s is not an amount.") % {"amount": amount or "—"})
    try:
        issued_on = dt.datetime.strptime(date, "%Y%m%d").date()  # noqa: DTZ007 (a date only)
    except ValueError:
        raise _refuse(
            _("the issue date %(date)s is not a date (YYYYMMDD).") % {"date": date or "—"}
        ) from None
    if not _CHECK_CODE.fullmatch(check_code):
        raise _refuse(_("the check code is not letters and digits."))
    return InvoiceQr(
        version=version,
        invoice_type=invoice_type,
        code=code,
        number=number,
        amount=Decimal(amount),
        issued_on=issued_on,
        check_code=check_code,
    )


def invoice_qr_disagreements(
    qr: InvoiceQr, *, special: bool, amount: Decimal, total: Decimal, issued_on: dt.date
) -> list[str]:
    """What the QR code says that the invoice we issued does not: its type, amount or issue
    date (empty when they agree). The amount is the amount before tax (金额); an issuer that
    prints the total (价税合计) there is accepted too."""
    problems = []
    if qr.is_special != special:
        problems.append(_("the QR code says %(type)s") % {"type": qr.type_name})
    if qr.amount not in (amount, total):
        problems.append(
            _("the QR code's amount is %(scanned)s, the invoice's %(amount)s (total %(total)s)")
            % {"scanned": qr.amount, "amount": amount, "total": total}
        )
    if qr.issued_on != issued_on:
        problems.append(
            _("the QR code's issue date is %(scanned)s, the invoice's %(issued)s")
            % {"scanned": qr.issued_on.isoformat(), "issued": issued_on.isoformat()}
        )
    return problems
