"""Voiding and reversing through the tax-system boundary, as the tests need it."""

import datetime as dt

from core.audit.actor import Actor
from invoices.models import Invoice, ReversalReason, TaxRequest
from invoices.taxsystem.interface import TaxResult
from invoices.taxsystem.services import tax_outcome_record, tax_request_open, tax_request_submit


def void_or_reverse(
    invoice: Invoice,
    *,
    certified: bool = False,
    form_number: str = "",
    now: dt.datetime | None = None,
) -> TaxRequest:
    """Open the request (R6 decides), let the sandbox tax platform act on it and record what
    it answered (R7): the whole round trip of one void or reversal."""
    tax_request = tax_request_open(
        invoice_id=invoice.pk,
        certified=certified,
        reason_code=ReversalReason.ISSUING_ERROR,
        buyer_form_number=form_number,
        now=now,
    )
    result: TaxResult = tax_request_submit(tax_request_id=tax_request.pk)
    return tax_outcome_record(
        tax_request_id=tax_request.pk, result=result, actor=Actor.system("tests")
    )
