"""The return rules, each stated once: pure functions over model instances, no queries.

Services enforce them (raising a domain error that says why), views and admin ask them before
offering an action (``can_*`` context values), templates reach them through those values or the
filters in ``returns.templatetags.portal``. A rule that needs another row (the current
red-letter form) takes it as an argument: the caller fetches it.
"""

from django.utils.translation import gettext as _

from invoices.models import Invoice, InvoiceMedium
from returns.models import (
    FormReviewState,
    MailReceipt,
    RedLetterForm,
    ReturnProblem,
    ReturnRequest,
    ReturnState,
)

# The Apply page's fields each "what was wrong" answer of the Refund dialog points at.
PROBLEM_FIELDS: dict[str, tuple[str, ...]] = {
    ReturnProblem.TITLE: ("title",),
    ReturnProblem.TYPE: ("invoice_type",),
    ReturnProblem.TAXPAYER_ID: ("taxpayer_id",),
    ReturnProblem.ADDRESS: ("registered_address", "registered_phone", "bank_name", "bank_account"),
    ReturnProblem.AMOUNT: ("amount",),
    ReturnProblem.OTHER: (),
}

# Before processing: the paper and the buyer's form may still change, finance may still reject.
BEFORE_PROCESSING = (ReturnState.SUBMITTED, ReturnState.RECEIVED)


def paper_missing_part_keys(receipt: MailReceipt) -> list[str]:
    """R5: what makes this paper incomplete, as keys (``returns.messages.PAPER_PARTS``; empty
    when complete). A special invoice comes back with its deduction form too; every part
    undamaged."""
    missing = []
    if not receipt.invoice_form_present:
        missing.append("invoice_form")
    if receipt.invoice.is_special and not receipt.deduction_form_present:
        missing.append("deduction_form")
    if not receipt.undamaged:
        missing.append("undamaged")
    return missing


def paper_missing_parts(receipt: MailReceipt) -> list[str]:
    """R5: what makes this paper incomplete, in words (empty when complete)."""
    words = {
        "invoice_form": _("the invoice form"),
        "deduction_form": _("the deduction form"),
        "undamaged": _("undamaged paper"),
    }
    return [str(words[key]) for key in paper_missing_part_keys(receipt)]


def paper_is_complete(receipt: MailReceipt) -> bool:
    """R5: the paper has every part, undamaged."""
    return not paper_missing_part_keys(receipt)


def invoice_can_be_certified(invoice: Invoice) -> bool:
    """R3: only a paper special invoice can have been certified (its buyer deducts the input
    tax), so only its return asks "has this invoice been certified?"."""
    return invoice.is_special and not invoice.is_digital


def invoice_can_be_booked(invoice: Invoice) -> bool:
    """R3: a digital invoice's return asks instead whether the buyer has booked it or confirmed
    its use (入账 / 用途确认): then the buyer must confirm the red-letter confirmation form."""
    return invoice.is_digital


def return_is_digital(rr: ReturnRequest) -> bool:
    """R4: a digital invoice (数电票) is not mailed: its return goes to processing at once."""
    return rr.medium == InvoiceMedium.DIGITAL


def return_needs_red_letter_form(rr: ReturnRequest) -> bool:
    """R4: a certified special invoice is not mailed back; the buyer's approved red-letter
    information form stands in for its paper."""
    return rr.certified and invoice_can_be_certified(rr.invoice)


def return_paper_is_awaited(rr: ReturnRequest) -> bool:
    """R4: the customer mails paper (and may say how it was sent) until it is logged."""
    return (
        rr.state == ReturnState.SUBMITTED
        and not return_needs_red_letter_form(rr)
        and not return_is_digital(rr)
    )


def return_slip_is_offered(rr: ReturnRequest) -> bool:
    """The customer prints a return slip for the envelope while its paper is awaited (R4):
    never for a digital invoice (nothing is mailed) nor a certified special invoice (the
    buyer's form stands in for the paper)."""
    return return_paper_is_awaited(rr)


def paper_parts_to_mail(invoice: Invoice) -> list[str]:
    """R5: what goes in the envelope: the invoice form, and a special invoice's deduction form
    too (a complete return, as finance checks it on arrival)."""
    parts = [str(_("The invoice form (发票联)"))]
    if invoice.is_special:
        parts.append(str(_("The deduction form (抵扣联)")))
    return parts


def return_is_before_processing(rr: ReturnRequest) -> bool:
    """Submitted or paper received: the paper and the buyer's form may still change."""
    return rr.state in BEFORE_PROCESSING


def return_can_be_cancelled(rr: ReturnRequest) -> bool:
    """R9: a return can be withdrawn until its paper is logged."""
    return rr.state == ReturnState.SUBMITTED


def return_tracking_can_be_updated(rr: ReturnRequest) -> bool:
    """How the paper was sent can change while it is on its way."""
    return return_paper_is_awaited(rr)


def return_can_be_rejected(rr: ReturnRequest) -> bool:
    """R5: finance rejects a return only before it is processing."""
    return return_is_before_processing(rr)


def red_letter_form_approved(form: RedLetterForm | None) -> bool:
    return form is not None and form.review_state == FormReviewState.APPROVED


def red_letter_form_can_be_replaced(rr: ReturnRequest, current: RedLetterForm | None) -> bool:
    """R3: the customer uploads or replaces the buyer's form before processing, until one is
    approved. ``current`` is the return's current form (``red_letter_form_current``)."""
    return (
        return_needs_red_letter_form(rr)
        and return_is_before_processing(rr)
        and not red_letter_form_approved(current)
    )


def red_letter_form_can_be_reviewed(rr: ReturnRequest, form: RedLetterForm) -> bool:
    """A pending form of a return not yet processing can be approved or rejected."""
    return return_is_before_processing(rr) and form.review_state == FormReviewState.PENDING


def return_is_ready_to_process(rr: ReturnRequest, current: RedLetterForm | None) -> bool:
    """R4: complete paper is in, or (a certified special invoice) the buyer's form is approved.
    ``current`` is the return's current form (``red_letter_form_current``)."""
    if return_is_digital(rr):
        return True  # nothing is mailed, nothing reviewed: the tax system does the rest
    if return_needs_red_letter_form(rr):
        return red_letter_form_approved(current)
    return rr.mail_receipt is not None and paper_is_complete(rr.mail_receipt)


def return_can_be_retried(rr: ReturnRequest) -> bool:
    """Staff retry a failed return once the cause is fixed."""
    return rr.state == ReturnState.FAILED


def return_outcome_can_be_recorded(rr: ReturnRequest) -> bool:
    """R6, R7: the tax system's outcome is recorded for a return sent to it (a failed one too:
    the tax system may have acted although the task failed)."""
    return rr.tax_request_id is not None and rr.state in (
        ReturnState.AWAITING_TAX,
        ReturnState.AWAITING_BUYER,
        ReturnState.FAILED,
        ReturnState.COMPLETED,
    )


def return_awaits_buyer(rr: ReturnRequest) -> bool:
    """A digital return whose red-letter confirmation form awaits the buyer's confirmation."""
    return rr.state == ReturnState.AWAITING_BUYER


def return_outcome_can_be_corrected(rr: ReturnRequest) -> bool:
    """Only a completed return's recorded outcome can be corrected."""
    return rr.state == ReturnState.COMPLETED and rr.tax_request_id is not None


def return_problem_fields(problem: str) -> tuple[str, ...]:
    """The fields to check when applying again after a return for ``problem``: marked on the
    pre-filled Apply page (none for "Other": the customer's reason says what)."""
    return PROBLEM_FIELDS.get(problem, ())


def return_allows_reapplying(rr: ReturnRequest) -> bool:
    """A completed return's invoice is voided or reversed and its amount invoiceable again: the
    customer may apply again, from the returned invoice's details."""
    return rr.state == ReturnState.COMPLETED
