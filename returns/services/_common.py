"""What every return service shares: the timeline and audit log, the state transition, the lock
order, rejecting, advancing to processing when ready (R4) and telling the customer (R8).
"""

from collections.abc import Mapping
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection
from django.db.models import Field, Model
from django.utils import translation
from django.utils.translation import gettext as _

from core import sql
from core.audit.actor import Actor
from core.audit.messages import message_render
from core.audit.models import AuditEntry
from core.audit.services import audit_entry_new, audit_record, object_label
from core.enqueue import enqueue_on_commit
from invoices.models import Customer, Invoice, NotifyBy
from invoices.rules import customer_notify_channels
from notifications.services import email_notification_queue, sms_message_queue
from notifications.texts import TEMPLATES, Params
from returns.exceptions import InvalidReturnReason
from returns.models import (
    FormReviewState,
    MailReceipt,
    RedLetterForm,
    ReturnEvent,
    ReturnRequest,
    ReturnState,
)
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
    """Change state and record it (``return_event_record``): on PostgreSQL the return's
    update, its event and its audit row in one statement (``_transition_sql``)."""
    # The event's and audit row's arguments, for either path below.
    recorded: dict[str, Any] = dict(
        return_request=rr, actor=actor, from_state=rr.state, to_state=to_state
    )
    recorded.update(note=note, key=key, params=params, action=action)
    rr.state = to_state
    if not _inserts_in_with():  # SQLite (development): the ORM's writes, one by one
        rr.save(update_fields=["state", "updated_at", *fields])
        return_event_record(**recorded)
        return
    event, audit = return_event_new(**recorded)
    # Stamped in the order the ORM's writes stamp them: the return, its event, the audit row.
    updated = sql.update_fields(ReturnRequest, ("state", "updated_at", *fields))
    values = [*sql.update_values(rr, updated), rr.pk, *sql.insert_values(event)]
    entry = audit_entry_new(object_type=object_label(rr), object_id=rr.pk, **audit)
    with sql.prepared_cursor() as cursor:
        cursor.execute(
            _transition_sql(updated),
            [*values, *sql.insert_values(entry)],
        )
        row = cursor.fetchone()
    if row is None:  # as ``save(update_fields=…)`` says when the row is gone
        raise DatabaseError("Save with update_fields did not affect any rows.")
    sql.saved(event, row[0])
    sql.saved(entry, row[1])


def _inserts_in_with() -> bool:
    """Whether the database runs an INSERT inside WITH (PostgreSQL); a name of this module's
    so that a test can take the other path."""
    return sql.writes_in_with()


@cache
def _transition_sql(updated: tuple[Field, ...]) -> str:
    """A transition's three writes in one statement: the return's ``updated`` fields (as
    ``save(update_fields=…)`` writes them), its event and its audit row (issue 16, P3: built
    by the ORM they cost more CPU than PostgreSQL spent on them, at every step of every
    return). Identifiers from the models' metadata, every value a parameter; no row when the
    return is gone, as the update then found nothing."""
    return (
        f"WITH u AS (UPDATE {ReturnRequest._meta.db_table} SET {sql.update_set(updated)} "  # noqa: S608
        "WHERE id = %s RETURNING id), "
        f"e AS (INSERT INTO {ReturnEvent._meta.db_table} ({sql.insert_columns(ReturnEvent)}) "
        f"SELECT {sql.insert_placeholders(ReturnEvent)} FROM u RETURNING id), "
        f"a AS (INSERT INTO {AuditEntry._meta.db_table} ({sql.insert_columns(AuditEntry)}) "
        f"SELECT {sql.insert_placeholders(AuditEntry)} FROM u RETURNING id) "
        "SELECT e.id, a.id FROM e, a"
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


# The related rows ``_lock_return`` reads with the return, in the order of its select list.
_LOCKED_WITH: tuple[type[Model], ...] = (
    ReturnRequest,
    Invoice,
    Customer,
    get_user_model(),
    MailReceipt,
)


@cache
def _lock_return_sql(lock: bool) -> tuple[str, str]:
    """The two statements of ``_lock_return``, written out (``core.sql``): the ORM spent more
    CPU building them, a join of five tables, than PostgreSQL spent running them, twice for
    every return a worker processes (issue 16, P3). Identifiers from the models' metadata;
    the id is a parameter."""
    returns, invoices, customers, users, receipts = (m._meta.db_table for m in _LOCKED_WITH)
    invoice = (
        f"SELECT i.id FROM {invoices} AS i WHERE i.id = "  # noqa: S608 - metadata only
        f"(SELECT r.invoice_id FROM {returns} AS r WHERE r.id = %s)"
        f"{' FOR UPDATE' if lock else ''}"
    )
    select = ", ".join(
        sql.columns(model, alias) for model, alias in zip(_LOCKED_WITH, "ricum", strict=True)
    )
    row = (
        f"SELECT {select} FROM {returns} AS r "  # noqa: S608 - metadata only
        f"JOIN {invoices} AS i ON i.id = r.invoice_id "
        f"JOIN {customers} AS c ON c.id = i.customer_id "
        f"JOIN {users} AS u ON u.id = c.user_id "
        f"LEFT JOIN {receipts} AS m ON m.id = r.mail_receipt_id "
        f"WHERE r.id = %s{' FOR UPDATE OF r' if lock else ''}"
    )
    return invoice, row


def _lock_return(return_request_id: int) -> ReturnRequest:
    """Lock the invoice first, then the return (the one lock order of this module): the
    invoice found by a subquery, in one statement. The invoice, its customer, the customer's
    user (telling the customer reads their email address) and the mail receipt come along."""
    invoice_sql, row_sql = _lock_return_sql(connection.features.has_select_for_update)
    with sql.prepared_cursor() as cursor:
        cursor.execute(invoice_sql, [return_request_id])
        if cursor.fetchone() is None:
            raise ReturnRequest.DoesNotExist(f"No return {return_request_id}.")
        cursor.execute(row_sql, [return_request_id])
        row = cursor.fetchone()
    if row is None:  # deleted between the two statements: returns are never deleted
        raise ReturnRequest.DoesNotExist(f"No return {return_request_id}.")
    rr_values, invoice_values, customer_values, user_values, receipt_values = sql.split(
        row, _LOCKED_WITH
    )
    rr = sql.instance(ReturnRequest, rr_values)
    invoice = sql.instance(Invoice, invoice_values)
    customer = sql.instance(Customer, customer_values)
    user = sql.instance(get_user_model(), user_values)
    receipt = sql.instance(MailReceipt, receipt_values) if rr.mail_receipt_id is not None else None
    if receipt is not None and receipt.invoice_id == invoice.pk:  # the paper of this invoice
        MailReceipt.invoice.field.set_cached_value(receipt, invoice)
    Customer.user.field.set_cached_value(customer, user)
    Invoice.customer.field.set_cached_value(invoice, customer)
    ReturnRequest.invoice.field.set_cached_value(rr, invoice)
    ReturnRequest.mail_receipt.field.set_cached_value(rr, receipt)
    return rr


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
