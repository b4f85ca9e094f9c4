"""What every return service shares: the timeline and audit log, the state transition, the lock
order, rejecting, advancing to processing when ready (R4) and telling the customer (R8).
"""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db.models import Subquery
from django.utils import translation
from django.utils.translation import gettext as _

from core.audit.actor import Actor
from core.audit.messages import message_render
from core.audit.services import audit_record
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


def return_event_new(
    *,
    return_request: ReturnRequest,
    actor: Actor,
    from_state: str,
    to_state: str,
    note: str = "",
    key: str = "",
    params: Mapping[str, Any] | None = None,
    action: str = "",
) -> tuple[ReturnEvent, dict[str, Any]]:
    """What ``return_event_record`` saves: the event, not yet saved, and the arguments of its
    audit row (``audit_record``'s, but the return acted on). For the statement that inserts a
    new return with both rows (``returns.services.submission``)."""
    params = dict(params or {})
    event = ReturnEvent(
        return_request=return_request,
        actor=actor.user,
        actor_kind=actor.kind,
        from_state=from_state,
        to_state=to_state,
        note=note[:REASON_MAX],
        note_key=key,
        note_params=params,
    )
    audit = {
        "actor": actor,
        "action": action or f"return.{to_state}",
        "customer_id": return_request.invoice.customer_id,
        "params": {"from": from_state, "to": to_state, "note_key": key, "note_params": params},
        "reason": note,
    }
    return event, audit


def return_event_record(
    *,
    return_request: ReturnRequest,
    actor: Actor,
    from_state: str,
    to_state: str,
    note: str = "",
    key: str = "",
    params: Mapping[str, Any] | None = None,
    action: str = "",
) -> ReturnEvent:
    """The return's timeline (R11) and the audit log, in the caller's transaction: who (a
    typed actor), when, from, to and why. ``note`` is text a person typed, kept as typed;
    what the system says is a message ``key`` and its ``params``, worded when shown in the
    reader's language. ``action`` names the audit action (``return.<to_state>`` unless said)."""
    event, audit = return_event_new(
        return_request=return_request,
        actor=actor,
        from_state=from_state,
        to_state=to_state,
        note=note,
        key=key,
        params=params,
        action=action,
    )
    event.save(force_insert=True)
    audit_record(obj=return_request, **audit)
    return event


def _transition(
    rr: ReturnRequest,
    *,
    to_state: str,
    actor: Actor,
    note: str = "",
    key: str = "",
    params: Mapping[str, Any] | None = None,
    fields: tuple[str, ...] = (),
    action: str = "",
) -> None:
    """Change state and record it (``return_event_record``)."""
    from_state = rr.state
    rr.state = to_state
    rr.save(update_fields=["state", "updated_at", *fields])
    return_event_record(
        return_request=rr,
        actor=actor,
        from_state=from_state,
        to_state=to_state,
        note=note,
        key=key,
        params=params,
        action=action,
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
    """Lock the invoice first, then the return (the one lock order of this module): the
    invoice found by a subquery, in one statement. The customer's user comes along (telling
    the customer reads their email address)."""
    invoice_of_return = ReturnRequest.objects.filter(pk=return_request_id).values("invoice_id")
    locked = Invoice.objects.select_for_update().filter(pk=Subquery(invoice_of_return))
    if not list(locked.values_list("pk", flat=True)):
        raise ReturnRequest.DoesNotExist(f"No return {return_request_id}.")
    return (
        ReturnRequest.objects.select_for_update(of=("self",))
        .select_related("invoice", "invoice__customer__user", "mail_receipt")
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
    actor: Actor,
    note: str = "",
    key: str = "",
    params: Mapping[str, Any] | None = None,
    fields: tuple[str, ...] = (),
    sms: tuple[str, Params] | None = None,
) -> None:
    """*rejected*: the timeline keeps the reason as key + parameters (and what a person typed);
    ``rejection_reason`` holds it worded in the customer's language, for the portal. The
    customer is told by ``sms`` (a template of ``notifications.texts`` and its parameters);
    by default the reason as typed, quoted."""
    with translation.override(rr.invoice.customer.language):
        worded = message_render(key, params) if key else ""
    rr.rejection_reason = " ".join(part for part in (worded, note) if part)[:REASON_MAX]
    _transition(
        rr,
        to_state=ReturnState.REJECTED,
        actor=actor,
        note=note,
        key=key,
        params=params,
        fields=("rejection_reason", *fields),
    )
    _withdraw_pending_forms(rr)
    template, sms_params = sms or ("return_rejected_note", {"note": rr.rejection_reason})
    _notify(rr, template=template, params={"number": rr.invoice.number, **sms_params})


def _advance_if_ready(rr: ReturnRequest, *, actor: Actor) -> None:
    """R4: the paper in and complete → processing. A certified special invoice waits for the
    buyer's approved red-letter information form instead of its paper: the buyer keeps the
    invoice it booked and certified, so nothing is mailed (paper that comes anyway is kept)."""
    if return_is_digital(rr):
        if rr.state != ReturnState.SUBMITTED:
            return
        key = "return.digital_sent"
    elif return_needs_red_letter_form(rr):
        if not return_is_before_processing(rr):
            return
        form = red_letter_form_current(return_request_id=rr.pk)
        if not return_is_ready_to_process(rr, form):
            return
        key = "return.ready_form_approved"
    elif rr.state == ReturnState.RECEIVED and return_is_ready_to_process(rr, None):
        key = "return.ready"
    else:
        return
    _transition(rr, to_state=ReturnState.PROCESSING, actor=actor, key=key)
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
