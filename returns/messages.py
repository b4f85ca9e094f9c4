"""The message keys of returns: the timeline notes the system words (``ReturnEvent.note_key``)
and the audit log's actions on returns. Stored as key + parameters, worded in the reader's
language when shown (issue 12). The English texts are the msgids the catalogue already had, so
their translations carry over."""

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.audit.messages import Params, message_register, message_render
from invoices.models import TaxOperation
from returns.models import RejectionReason, ReturnState

# The parts of paper that can be missing (R5), by key: the parameter stores keys, not words.
PAPER_PARTS = {
    "invoice_form": gettext_lazy("the invoice form"),
    "deduction_form": gettext_lazy("the deduction form"),
    "undamaged": gettext_lazy("undamaged paper"),
}


def _paper_incomplete(params: Params) -> str:
    parts = ", ".join(str(PAPER_PARTS.get(part, part)) for part in params["parts"])
    return _("The returned paper is incomplete: missing %(parts)s.") % {"parts": parts}


def _sent_to_tax_system(params: Params) -> str:
    operation = dict(TaxOperation.choices).get(params["operation"], params["operation"])
    return _("Sent to the tax system: %(operation)s (request %(serial)s)") % {
        "operation": operation,
        "serial": params["serial"],
    }


def _rejected_with_reason(params: Params) -> str:
    """A reason finance chose from the list, in the reader's language (the text they added
    is the event's note, as typed)."""
    choice = RejectionReason.objects.filter(pk=params["choice"]).first()
    return str(choice) if choice is not None else ""


def _paper_logged(params: Params) -> str:
    if params.get("return"):
        return _("Paper invoice %(number)s logged for return %(reference)s") % params
    return _("Paper invoice %(number)s logged; no return is waiting for it") % params


def _transition(params: Params) -> str:
    """An audit row of a state change: the new state, and the note's key when it has one."""
    label = str(dict(ReturnState.choices).get(params.get("to", ""), params.get("to", "")))
    if params.get("note_key"):
        return f"{label}: {message_render(params['note_key'], params.get('note_params'))}"
    return label


NOTES: dict[str, Any] = {
    "return.cancelled_by_customer": gettext_lazy("Cancelled by customer"),
    "return.retried_by_staff": gettext_lazy("Retried by staff"),
    "return.ready": gettext_lazy("Ready to process"),
    "return.ready_form_approved": gettext_lazy(
        "Red-letter information form approved: ready to process"
    ),
    "return.digital_sent": gettext_lazy("A digital invoice is not mailed: sent to the tax system"),
    "paper.received_on": gettext_lazy("Paper received on %(date)s"),
    "paper.incomplete": _paper_incomplete,
    "return.rejected_choice": _rejected_with_reason,
    "form.rejected": gettext_lazy("The red-letter information form was rejected: %(reason)s"),
    "tax.sent": _sent_to_tax_system,
    "tax.buyer_confirmed": gettext_lazy(
        "The buyer confirmed red-letter confirmation form %(form)s"
    ),
    "tax.reversed": gettext_lazy("Red-letter invoice %(code)s %(number)s issued on %(date)s"),
    "tax.voided": gettext_lazy("Voided in the tax system on %(date)s"),
    "tax.awaiting_buyer": gettext_lazy(
        "Red-letter confirmation form %(form)s entered: the buyer confirms it on its "
        "e-tax platform by %(deadline)s"
    ),
    "tax.buyer_lapsed": gettext_lazy(
        "Red-letter confirmation form %(form)s was not confirmed within 72 hours and "
        "lapsed; the invoice stays valid. You may return it again."
    ),
    "tax.buyer_refused": gettext_lazy(
        "The buyer refused red-letter confirmation form %(form)s; the invoice stays "
        "valid. You may return it again."
    ),
    "return.closed_no_paper": gettext_lazy(
        "The paper invoice did not arrive within %(days)d days, so the return is "
        "closed. When you find the invoice, return it again and mail it."
    ),
    "tax.refused": gettext_lazy("The tax system refused the request: %(error)s"),
    "note.outcome_corrected": gettext_lazy("Outcome corrected to %(after)s: %(reason)s"),
}

# Audit actions on returns. Customer-visible: the customer's timeline shows them (their own
# return), worded without staff names.
ACTIONS: dict[str, tuple[Any, bool]] = {
    **{f"return.{state}": (_transition, True) for state in ReturnState.values},
    "return.retried": (_transition, True),
    "return.tracking_edited": (
        gettext_lazy("Shipping details changed: %(courier)s %(tracking_number)s"),
        True,
    ),
    "return.outcome_corrected": (_transition, True),
    "red_letter_form.uploaded": (
        gettext_lazy("Red-letter information form %(form_number)s uploaded"),
        True,
    ),
    "red_letter_form.replaced": (
        gettext_lazy("Red-letter information form replaced by %(form_number)s"),
        True,
    ),
    "red_letter_form.approved": (
        gettext_lazy("Red-letter information form %(form_number)s approved"),
        True,
    ),
    "red_letter_form.rejected": (
        gettext_lazy("Red-letter information form %(form_number)s rejected: %(reason)s"),
        True,
    ),
    "return.envelope_submitted": (
        gettext_lazy("%(count)s paper invoices returned in one envelope (%(tracking_number)s)"),
        True,
    ),
    "paper.logged": (_paper_logged, False),
    "paper.matched": (
        gettext_lazy("Paper invoice %(number)s matched to return %(reference)s"),
        False,
    ),
    "paper.sent_back": (
        gettext_lazy("Paper invoice %(number)s sent back to the customer (%(tracking_number)s)"),
        False,
    ),
}


# The actions besides state changes that the customer's history shows (their own return).
CUSTOMER_HISTORY_ACTIONS = [
    key for key, (text, visible) in ACTIONS.items() if visible and text is not _transition
]


def register() -> None:
    for key, text in NOTES.items():
        message_register(key, text)
    for key, (text, customer_visible) in ACTIONS.items():
        message_register(key, text, customer_visible=customer_visible)
