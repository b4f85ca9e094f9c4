"""What the post room's scan field reads: a return slip's reference, an invoice code and number,
or the QR code printed on the paper invoice. Pure: no queries (``returns.selectors.
invoice_for_scan`` finds the invoice).
"""

import enum
from dataclasses import dataclass

from django.utils.translation import gettext as _

from invoices.codes import InvalidCodeAndNumber, parse_code_and_number
from invoices.qr import InvoiceQr, looks_like_invoice_qr, parse_invoice_qr
from returns.exceptions import InvalidScan
from returns.references import reference_looks_typed, reference_parse


class ScanKind(enum.StrEnum):
    SLIP = "slip"
    CODE_AND_NUMBER = "code_and_number"
    INVOICE_QR = "invoice_qr"


@dataclass(frozen=True)
class Scan:
    kind: ScanKind
    text: str  # as it was scanned or typed, trimmed
    reference: str = ""  # a slip's, canonical
    code: str = ""
    number: str = ""
    qr: InvoiceQr | None = None


def scan_parse(value: str) -> Scan:
    """Read one scan; a malformed one is refused with what is wrong with it."""
    text = (value or "").strip()
    if not text:
        raise InvalidScan(
            _("Scan the return slip or the invoice's QR code, or type the invoice code and number.")
        )
    if looks_like_invoice_qr(text):
        qr = parse_invoice_qr(text)  # InvalidInvoiceQr is a DomainError too
        return Scan(ScanKind.INVOICE_QR, text, code=qr.code, number=qr.number, qr=qr)
    if reference_looks_typed(text):
        reference = reference_parse(text)
        if reference is None:
            raise InvalidScan(
                _(
                    "%(text)s is not a return slip's reference: it reads like R261130-7KM4QXG "
                    "(its last character checks the others). Check the slip and type it again."
                )
                % {"text": text}
            )
        return Scan(ScanKind.SLIP, text, reference=reference)
    try:
        code, number = parse_code_and_number(text)
    except InvalidCodeAndNumber:
        raise InvalidScan(
            _(
                "%(text)s is not a return slip, an invoice's QR code or an invoice code (10 or "
                "12 digits) and number (8 digits)."
            )
            % {"text": text}
        ) from None
    return Scan(ScanKind.CODE_AND_NUMBER, text, code=code, number=number)
