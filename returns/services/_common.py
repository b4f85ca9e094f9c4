"""What every return service shares: the audit trail, the state transition, the lock
order, rejecting, advancing to processing when ready (R4) and telling the customer (R8).
"""

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.enqueue import enqueue_on_commit
from invoices.models import Invoice, NotifyBy
from invoices.rules import customer_notify_channels
from notifications.services import email_notification_queue, sms_message_queue
from notifications.texts import TEMPLATES, Params
from returns.exceptions import InvalidReturnReason
from returns.models import FormReviewState, RedLetterForm, ReturnEvent, ReturnRequest, ReturnState
from returns.rules import (
    return_is_before_processing,
    return_is_digital,
    return_is_ready_to_process,
    return_needs_red_letter_form,
)
from returns.selectors import red_letter_form_current

REASON_MAX = 500


# Who acts: the logged-in customer or staff member, or None when the system itself does it.
# ``User`` is settings.AUTH_USER_MODEL (Django's own; the project sets no custom user model).
Actor = User | None


def return_event_record(
    *,
    return_request: ReturnRequest,
    actor: Actor,
    from_state: str,
    to_state: str,
    note: str = "",
) -> ReturnEvent:
    """The audit trail (R11): who (None for the system), when, from, to and why."""
    return ReturnEvent.objects.create(
        return_request=return_request,
        actor=actor,
        from_state=from_state,
        to_state=to_state,
        note=note[:REASON_MAX],
    )


Note = str | Promise | Callable[[], str]


def _transition(
    rr: ReturnRequest, *, to_state: str, actor: Actor, note: Note = "", fields: tuple[str, ...] = ()
) -> None:
    """Change state and record it. The customer reads the timeline, so a note the system words
    (a lazy string, or a callable for one with values) is rendered in the customer's language;
    text a person typed is kept as typed."""
    from_state = rr.state
    rr.state = to_state
    rr.save(update_fields=["state", "updated_at", *fields])
    with translation.override(rr.invoice.customer.language):
        text = note() if callable(note) else str(note)
    return_event_record(
        return_request=rr, actor=actor, from_state=from_state, to_state=to_state, note=text
    )


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidReturnReason(_("Please say why you are returning this invoice."))
    if len(reason) > REASON_MAX:
        raise InvalidReturnReason(
            _("The reason is %(count)d characters long; at most 500 are allowed.")
            % {"count": len(reason)}
        )
    return reason


def _lock_return(return_request_id: int) -> ReturnRequest:
    """Lock the invoice first, then the return (the one lock order of this module)."""
    invoice_id = (
        ReturnRequest.objects.filter(pk=return_request_id)
        .values_list("invoice_id", flat=True)
        .get()
    )
    Invoice.objects.select_for_update().filter(pk=invoice_id).get()
    return (
        ReturnRequest.objects.select_for_update(of=("self",))
        .select_related("invoice", "invoice__customer", "mail_receipt")
        .get(pk=return_request_id)
    )


def _withdraw_pending_forms(rr: ReturnRequest) -> None:
    """A closed return's unreviewed form leaves the reviewers' queue."""
    RedLetterForm.objects.filter(return_request=rr, review_state=FormReviewState.PENDING).update(
        review_state=FormReviewState.WITHDRAWN
    )


def _reject(
    rr: ReturnRequest,
    *,
    reason: str,
    actor: Actor,
    fields: tuple[str, ...] = (),
    sms: tuple[str, Params] | None = None,
) -> None:
    """*rejected* with ``reason`` (the portal's words); the customer is told by ``sms`` (a
    template and its parameters), by default the reason as typed, quoted."""
    rr.rejection_reason = reason[:REASON_MAX]
    _transition(
        rr,
        to_state=ReturnState.REJECTED,
        actor=actor,
        note=reason,
        fields=("rejection_reason", *fields),
    )
    _withdraw_pending_forms(rr)
    template, params = sms or ("return_rejected_note", {"note": rr.rejection_reason})
    _notify(rr, template=template, params={"number": rr.invoice.number, **params})


def _advance_if_ready(rr: ReturnRequest, *, actor: Actor) -> None:
    """R4: the paper in and complete → processing. A certified special invoice waits for the
    buyer's approved red-letter information form instead of its paper: the buyer keeps the
    invoice it booked and certified, so nothing is mailed (paper that comes anyway is kept)."""
    if return_is_digital(rr):
        if rr.state != ReturnState.SUBMITTED:
            return
        note = gettext_lazy("A digital invoice is not mailed: sent to the tax system")
    elif return_needs_red_letter_form(rr):
        if not return_is_before_processing(rr):
            return
        form = red_letter_form_current(return_request_id=rr.pk)
        if not return_is_ready_to_process(rr, form):
            return
        note = gettext_lazy("Red-letter information form approved: ready to process")
    elif rr.state == ReturnState.RECEIVED and return_is_ready_to_process(rr, None):
        note = gettext_lazy("Ready to process")
    else:
        return
    _transition(rr, to_state=ReturnState.PROCESSING, actor=actor, note=note)
    from returns.tasks import return_process_task

    enqueue_on_commit(return_process_task, rr.pk)


def _notify(
    rr: ReturnRequest,
    *,
    template: str,
    params: Params,
    event: str = "",
) -> frozenset[str]:
    """Tell the customer of one event, by SMS and/or email as they chose (R8), in their
    language, after commit; ``template`` is a key of ``notifications.texts.TEMPLATES``.

    ``event`` names the event (default: this return and the template's purpose) and is the
    idempotency key of both messages: an event is told once, whichever path reaches it twice.
    Returns the channels used (empty: the customer has no mobile and no email address).
    """
    customer = rr.invoice.customer
    purpose = TEMPLATES[template].purpose
    key = event or f"return:{rr.pk}:{purpose}"
    channels = customer_notify_channels(
        customer, email_possible=settings.NOTIFICATION_EMAIL_ENABLED
    )
    if NotifyBy.SMS in channels:
        sms_message_queue(
            to=customer.mobile,
            purpose=purpose,
            template=template,
            params=params,
            idempotency_key=key,
            language=customer.language,
            related_return_id=rr.pk,
        )
    if NotifyBy.EMAIL in channels:
        email_notification_queue(
            to=customer.user.email,
            purpose=purpose,
            template=template,
            params=params,
            idempotency_key=key,
            language=customer.language,
            related_return_id=rr.pk,
        )
    return channels
