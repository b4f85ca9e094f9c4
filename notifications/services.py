"""Every write to SMS messages: queue, send, record failures, resend, apply status callbacks;
and to the emails sent beside them.

Sending is at most once per queued message in normal operation: the row is locked and moved to
``sending`` before the provider is called, so a second run of the task finds nothing to do.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Model, Q
from django.urls import reverse
from django.utils import timezone

from core import sql
from core.audit.actor import Actor
from core.audit.services import audit_record
from core.correlation import correlation_id
from core.enqueue import enqueue_on_commit
from notifications.backends import ProviderStatus, SendResult, get_sms_backend
from notifications.exceptions import (
    SmsOutcomeNotRecorded,
    SmsOutcomeUnknown,
    SmsPermanentError,
    SmsProviderUnavailable,
    SmsTransientError,
)
from notifications.models import (
    E164_REGEX,
    EmailNotification,
    EmailStatus,
    SmsMessage,
    SmsPendingStatusCallback,
    SmsStatus,
)
from notifications.texts import Params, email_body, email_subject, sms_body

M = TypeVar("M", bound=Model)

logger = logging.getLogger(__name__)

_E164 = re.compile(E164_REGEX)

# Extra wait, beyond the task's hard time limit, before a message stuck in "sending" is taken
# over: covers clock differences between worker hosts and the database.
SENDING_TAKEOVER_MARGIN = timedelta(seconds=60)

# Forward order of the statuses a callback may advance; FAILED is outside it (terminal).
_STATUS_RANK = {
    SmsStatus.QUEUED: 0,
    SmsStatus.SENDING: 1,
    SmsStatus.SENT: 2,
    SmsStatus.DELIVERED: 3,
}

# The first key of this app's PostgreSQL advisory locks (the second is the SID's hash).
_ADVISORY_LOCK_CLASS = 7_150_001

# Twilio's message statuses (status callback ``MessageStatus``) in our terms.
_TWILIO_STATUS = {
    "queued": SmsStatus.SENDING,
    "accepted": SmsStatus.SENDING,
    "scheduled": SmsStatus.SENDING,
    "sending": SmsStatus.SENDING,
    "sent": SmsStatus.SENT,
    "delivered": SmsStatus.DELIVERED,
    "undelivered": SmsStatus.FAILED,
    "failed": SmsStatus.FAILED,
}


# At most this many messages are re-enqueued per sweep; the next sweep takes the rest.
REQUEUE_BATCH = 500

# What a failover, a pooler or an operator terminating our connections looks like: the
# statement may not have run, and running it again on a new connection may succeed.
DATABASE_ERRORS = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class SendOutcome:
    """What the provider said about one attempt, to be written on the message.

    Plain strings, so the send task can carry it in its retry when the database was lost
    before it was written (``SmsOutcomeNotRecorded``).
    """

    status: str
    provider_id: str = ""
    provider_status: str = ""
    error_code: str = ""
    error_message: str = ""


def _enqueue_send(sms: SmsMessage) -> None:
    # Imported here: the task module imports this one, and a task must exist before it is sent.
    from notifications.tasks import sms_send_task

    enqueue_on_commit(sms_send_task, sms.id)


def sms_message_queue(
    *,
    to: str,
    purpose: str,
    idempotency_key: str,
    body: str = "",
    template: str = "",
    params: Params | None = None,
    language: str = "zh-hans",
    related_return_id: int | None = None,
) -> SmsMessage:
    """Record an SMS and send it after the caller's transaction commits (R8).

    The text is ``template`` with ``params`` from the catalogue (``notifications.texts``),
    rendered now in ``language`` with the sender's signature; the row keeps the body as sent
    and the key and parameters. (``body`` alone is for staff tools and tests.)

    Idempotent on ``idempotency_key``: a second call returns the first row and enqueues nothing.
    Two concurrent calls are settled by the unique constraint: the loser's insert does nothing
    and it reads the winner's row (``_create_once``), its transaction (the caller's
    void/reverse, say) still usable.
    """
    if not _E164.match(to):
        raise ValueError(f"SMS recipient {to!r} is not an E.164 number such as +8613800138000.")
    params = dict(params or {})
    if template:
        body = sms_body(template, params, language=language, to=to)
    if not body:
        raise ValueError("An SMS needs a body.")
    return _queue_once(
        SmsMessage,
        _enqueue_send,
        idempotency_key=idempotency_key,
        to=to,
        body=body,
        template=template,
        params=params,
        purpose=purpose,
        language=language,
        related_return_id=related_return_id,
    )


def _queue_once(
    model: type[M], enqueue: Callable[[M], None], *, idempotency_key: str, **fields: Any
) -> M:
    """The message's row (``_create_once``), and its send enqueued after commit when it is new.

    The row and its outbox row in one transaction: the caller's when there is one (a
    transition), without a savepoint of its own, which would cost two round trips on every
    return processed (issue 16, P3); an error in it rolls the caller back whole, as no caller
    catches one to carry on (a database error aborts PostgreSQL's transaction anyway). Bad
    arguments are refused before it, so a caller that catches those keeps its transaction."""
    with transaction.atomic(savepoint=False):
        message, created = _create_once(model, idempotency_key=idempotency_key, **fields)
        if created:
            enqueue(message)
    return message


def _create_once(model: type[M], *, idempotency_key: str, **fields: Any) -> tuple[M, bool]:
    """The row of ``model`` for ``idempotency_key``: a new one (True), or the one there is.

    One statement, ``INSERT … ON CONFLICT DO NOTHING``, for the common case of a new row: the
    ORM's read, savepoint and insert took four, each built at some CPU cost, on every message
    a worker queues (issue 16, P3). A second call, or one at the same moment (which waits for
    the first's commit), inserts nothing and reads the first's row: the caller's transaction
    stays usable without a savepoint."""
    obj = model(idempotency_key=idempotency_key, correlation_id=correlation_id(), **fields)
    with connection.cursor() as cursor:
        cursor.execute(_insert_once_sql(model), sql.insert_values(obj))
        row = cursor.fetchone()
    if row is not None:
        return sql.saved(obj, row[0]), True
    existing = model._default_manager.filter(idempotency_key=idempotency_key).first()
    if existing is None:  # never deleted: only a bug could get here
        raise IntegrityError(f"{model._meta.label} {idempotency_key!r} conflicts, unreadable.")
    return existing, False


@cache
def _insert_once_sql(model: type[Model]) -> str:
    """``_create_once``'s statement for ``model``, built once: identifiers from its metadata,
    every value a parameter."""
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({sql.insert_columns(model)}) "  # noqa: S608
        f"VALUES ({sql.insert_placeholders(model)}) "
        f"ON CONFLICT ({quote(str(sql.meta_field(model, 'idempotency_key').column))}) "
        f"DO NOTHING RETURNING {quote(str(sql.meta_field(model, 'id').column))}"
    )


# Beyond the longest a send's HTTP exchange can last: a worker paused by a busy host, the write
# of the answer after it.
SENDING_WINDOW_MARGIN = timedelta(seconds=10)


def sms_sending_window() -> timedelta:
    """How long a message may stay *sending* while the run that sends it is alive.

    The run's only wait in *sending* is its one HTTP request to the provider, which the SDK
    makes with ``TWILIO_TIMEOUT_SECONDS`` for connecting and again for the answer (no retries):
    twice the timeout plus ``SENDING_WINDOW_MARGIN`` (30 s with the default 10 s timeout).
    After it the run is dead or has given up, and the message is settled by asking the
    provider (``sms_send``) instead of waiting for a fixed 180 s."""
    return timedelta(seconds=2 * settings.TWILIO_TIMEOUT_SECONDS) + SENDING_WINDOW_MARGIN


def sms_sending_settles_in(sms: SmsMessage) -> float:
    """Seconds until a *sending* message's window has passed (0 when it has)."""
    remaining = sms.updated_at + sms_sending_window() - timezone.now()
    return max(remaining.total_seconds(), 0.0)


def _sending_stale_before() -> datetime:
    return timezone.now() - sms_sending_window()


def _sending_is_stale(sms: SmsMessage) -> bool:
    return sms.updated_at < _sending_stale_before()


@transaction.atomic
def sms_requeue_stuck(*, older_than: timedelta) -> list[int]:
    """The sweeper: publish the send task again for messages that may have lost theirs.

    - ``queued`` and unchanged for ``older_than``: the broker was down when it was queued, or
      the message was lost. ``older_than`` must exceed the send task's longest retry
      countdown, because a message waiting for its retry is also ``queued`` (its
      ``updated_at`` moves at every attempt). Its ``updated_at`` is touched so a backlog is
      not re-enqueued on every sweep.
    - ``sending`` past the sending window (``sms_sending_window``): the run that sent it is
      dead or gave up; ``sms_send`` takes it over. Its ``updated_at`` is left alone, since
      that is what tells ``sms_send`` the earlier run is dead.

    ``sms_send`` is idempotent, so a duplicate task sends nothing. Rows locked right now are
    being sent and are skipped. Returns the ids enqueued.
    """
    stuck = (
        SmsMessage.objects.filter(
            Q(status=SmsStatus.QUEUED, updated_at__lt=timezone.now() - older_than)
            | Q(status=SmsStatus.SENDING, updated_at__lt=_sending_stale_before())
        )
        .order_by("updated_at")
        .select_for_update(skip_locked=True)
    )
    rows = list(stuck.values_list("pk", "status")[:REQUEUE_BATCH])
    queued = [pk for pk, status in rows if status == SmsStatus.QUEUED]
    if queued:
        SmsMessage.objects.filter(pk__in=queued).update(updated_at=timezone.now())
    from notifications.tasks import sms_send_task

    ids = [pk for pk, _status in rows]
    for sms_message_id in ids:
        enqueue_on_commit(sms_send_task, sms_message_id)
    if ids:
        logger.warning("re-enqueued %d stuck SMS: %s", len(ids), ids)
    return ids


def _status_callback_url() -> str | None:
    if not settings.PUBLIC_BASE_URL:
        return None
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("notifications:twilio-status")


def sms_send(*, sms_message_id: int) -> SmsMessage:
    """Send a queued SMS through the configured backend; idempotent.

    The row is locked and moved to ``sending`` in a short transaction; the provider is called
    after that commits, outside any transaction, and the outcome is written in another one.

    - queued: send it. Success → ``sent`` with the provider's id. ``SmsPermanentError`` →
      ``failed`` with the provider's code, not raised (retrying cannot help).
      ``SmsTransientError`` → back to ``queued`` with the error noted, re-raised so the task
      retries with backoff.
    - sent, delivered, failed: nothing to do; return quietly (a duplicate task sends nothing).
    - sending: an earlier attempt may have reached the provider — its run is still talking to
      it, died mid-call (acks_late redelivers the task when a worker is lost), or got no answer
      (``SmsOutcomeUnknown``: a read timeout). Twilio takes no idempotency key, so sending
      again blindly could text the customer twice. While the earlier run may still be alive
      (within ``sms_sending_window``, derived from the HTTP timeout) we return quietly, and
      the task tries again when the window has passed (the sweeper too, as a last resort);
      then this function *asks the provider* whether a message
      with this body went to this number since the attempt began (``find_sent``): if so it is
      recorded as sent with the provider's id; only if not is it sent again.
    """
    with transaction.atomic():
        sms = SmsMessage.objects.select_for_update().get(pk=sms_message_id)
        if sms.status == SmsStatus.SENDING and not _sending_is_stale(sms):
            logger.info("SMS %s is being sent by another run; leaving it alone.", sms.pk)
            return sms
        if sms.status not in (SmsStatus.QUEUED, SmsStatus.SENDING):
            return sms
        unsettled_since = sms.updated_at if sms.status == SmsStatus.SENDING else None
        if unsettled_since is None:
            sms.status = SmsStatus.SENDING
            sms.attempts += 1
            sms.save(update_fields=["status", "attempts", "updated_at"])

    backend = get_sms_backend()
    if unsettled_since is not None:
        found = _find_at_provider(sms, since=unsettled_since - SENDING_TAKEOVER_MARGIN)
        if found is not None:
            logger.warning("SMS %s had reached the provider as %s.", sms.pk, found.provider_id)
            return _record_or_carry(
                sms.pk,
                SendOutcome(
                    status=SmsStatus.SENT,
                    provider_id=found.provider_id,
                    provider_status=found.status,
                ),
            )
        with transaction.atomic():
            sms = SmsMessage.objects.select_for_update().get(pk=sms_message_id)
            if sms.status != SmsStatus.SENDING or sms.updated_at != unsettled_since:
                return sms  # another run settled it meanwhile
            sms.attempts += 1
            sms.save(update_fields=["attempts", "updated_at"])
    # From here on the request may reach the provider: a database error while writing its
    # answer must not lose it (``_record_or_carry``).
    try:
        result = backend.send(to=sms.to, body=sms.body, status_callback=_status_callback_url())
    except SmsOutcomeUnknown as exc:
        # Left in "sending": the sweeper settles it with the provider after the stale window.
        return _record_or_carry(
            sms.pk, SendOutcome(status=SmsStatus.SENDING, error_message=str(exc))
        )
    except SmsPermanentError as exc:
        return _record_or_carry(
            sms.pk,
            SendOutcome(
                status=SmsStatus.FAILED,
                error_code="" if exc.code is None else str(exc.code),
                error_message=str(exc),
            ),
        )
    except SmsTransientError as exc:
        _record_or_carry(sms.pk, SendOutcome(status=SmsStatus.QUEUED, error_message=str(exc)))
        raise
    # The status in Twilio's answer to a create is where the message starts ("queued",
    # "accepted"); what becomes of it arrives by callback or by reconciliation.
    return _record_or_carry(
        sms.pk, SendOutcome(status=SmsStatus.SENT, provider_id=result.provider_id)
    )


def _record_or_carry(sms_message_id: int, outcome: SendOutcome) -> SmsMessage:
    """Write the provider's answer; if the database is lost meanwhile, raise it as
    ``SmsOutcomeNotRecorded`` carrying the answer, so the task retries *writing* it (the SID
    of a message Twilio accepted) instead of failing the message or sending it again."""
    try:
        return sms_outcome_record(sms_message_id=sms_message_id, **asdict(outcome))
    except DATABASE_ERRORS as exc:
        raise SmsOutcomeNotRecorded(
            f"SMS {sms_message_id}: the provider's answer ({outcome.status}) could not be "
            f"written: {exc.__class__.__name__}: {exc}",
            outcome=asdict(outcome),
        ) from exc


@transaction.atomic
def sms_outcome_record(
    *,
    sms_message_id: int,
    status: str,
    provider_id: str = "",
    provider_status: str = "",
    error_code: str = "",
    error_message: str = "",
) -> SmsMessage:
    """Write what the provider said about an attempt on a message in ``sending``.

    Idempotent: a message another run has settled meanwhile (sent, failed, or back in the
    queue) is left as it is, so a retried write of the same answer changes nothing.
    ``provider_status`` is Twilio's status at that moment (a look-up may find the message
    already delivered or failed); it is applied by the forward-only rules of the callbacks.
    """
    sms = SmsMessage.objects.select_for_update().get(pk=sms_message_id)
    if sms.status != SmsStatus.SENDING:
        if provider_id and sms.provider_id and sms.provider_id != provider_id:
            logger.error(
                "SMS %s was sent twice: recorded as %s, the provider also has %s.",
                sms.pk,
                sms.provider_id,
                provider_id,
            )
        return sms
    sms.status = status
    sms.error_code = error_code
    sms.error_message = error_message
    update_fields = ["status", "error_code", "error_message", "updated_at"]
    if status == SmsStatus.SENT:
        sms.provider_id = provider_id
        sms.sent_at = timezone.now()
        update_fields += ["provider_id", "sent_at"]
    sms.save(update_fields=update_fields)
    if status == SmsStatus.SENT:
        if provider_status:
            _apply_provider_status(sms, provider_status)
        _apply_pending_callbacks(sms)
    return sms


def _find_at_provider(
    sms: SmsMessage, *, since: datetime, also_exclude: str = ""
) -> SendResult | None:
    """Ask the provider for this message (same number, same body, created since ``since``).

    Messages recorded on other rows (the same text sent to the same number for an earlier
    return) are not this one. Raises ``SmsTransientError`` when the provider cannot answer.
    """
    taken = set(
        SmsMessage.objects.filter(to=sms.to, body=sms.body)
        .exclude(pk=sms.pk)
        .exclude(provider_id="")
        .values_list("provider_id", flat=True)
    )
    if also_exclude:
        taken.add(also_exclude)
    return get_sms_backend().find_sent(to=sms.to, body=sms.body, since=since, exclude=taken)


@transaction.atomic
def sms_mark_failed(*, sms_message_id: int, error: str) -> SmsMessage | None:
    """Record that sending gave up on a message that never reached the provider.

    Only a ``queued`` message fails this way: nothing of it is at the provider (its last
    attempt, if any, was refused as transient). A ``sending`` message may have reached the
    provider and is never failed here (``sms_settle_after_giving_up`` asks the provider);
    sent, delivered or failed messages are left as they are. None if the row is gone.
    """
    sms = SmsMessage.objects.select_for_update().filter(pk=sms_message_id).first()
    if sms is None or sms.status != SmsStatus.QUEUED:
        return sms
    sms.status = SmsStatus.FAILED
    sms.error_message = error
    sms.save(update_fields=["status", "error_message", "updated_at"])
    logger.error("SMS %s failed for good: %s", sms.pk, error)
    return sms


def sms_settle_after_giving_up(*, sms_message_id: int, error: str) -> SmsMessage | None:
    """The send task gave up (retries exhausted, or an unexpected error): settle the message.

    - ``queued``: it never reached the provider: ``failed`` with the error (staff may resend).
    - ``sending``: the request may have gone out, so it is never failed blindly: the provider
      is asked (same look-up as the sweeper's). Found → recorded as sent with its SID; not
      found → ``failed``; the provider cannot be asked → left in ``sending``, where the
      sweeper settles it after the stale window.
    - anything else, or a row that no longer exists: nothing to do.
    """
    sms = SmsMessage.objects.filter(pk=sms_message_id).first()
    if sms is None:
        logger.warning("SMS %s no longer exists: nothing to record (%s).", sms_message_id, error)
        return None
    if sms.status != SmsStatus.SENDING:
        return sms_mark_failed(sms_message_id=sms_message_id, error=error)
    sending_since = sms.updated_at
    try:
        found = _find_at_provider(sms, since=sending_since - SENDING_TAKEOVER_MARGIN)
    except SmsTransientError as exc:
        logger.warning(
            "SMS %s may have reached the provider, which cannot be asked now (%s); left in "
            "sending for the sweeper.",
            sms.pk,
            exc,
        )
        return sms
    if found is not None:
        logger.warning("SMS %s had reached the provider as %s.", sms.pk, found.provider_id)
        return sms_outcome_record(
            sms_message_id=sms.pk,
            status=SmsStatus.SENT,
            provider_id=found.provider_id,
            provider_status=found.status,
        )
    return _sms_fail_unsent(sms_message_id=sms.pk, error=error, sending_since=sending_since)


@transaction.atomic
def _sms_fail_unsent(*, sms_message_id: int, error: str, sending_since: datetime) -> SmsMessage:
    """Fail a ``sending`` message the provider says it does not have, unless it moved since."""
    sms = SmsMessage.objects.select_for_update().get(pk=sms_message_id)
    if sms.status != SmsStatus.SENDING or sms.updated_at != sending_since:
        return sms
    sms.status = SmsStatus.FAILED
    sms.error_message = f"{error} (the provider has no such message)"
    sms.save(update_fields=["status", "error_message", "updated_at"])
    logger.error("SMS %s failed for good: %s", sms.pk, sms.error_message)
    return sms


def sms_resend(*, sms_message_id: int, actor: Actor) -> SmsMessage:
    """Staff action on a failed SMS: ask the provider first, then send again only if needed.

    A message can be recorded failed although it reached the provider (its answer was lost
    with the database connection, say). So the provider is asked for this text to this
    number since the message was created (the message's own SID is skipped when the
    provider itself reported it failed or undelivered):

    - found, and not failed at the provider: recorded with the provider's SID and status,
      nothing is sent;
    - not found, or failed there too: put back in the queue and sent after commit;
    - the provider cannot be asked: ``SmsProviderUnavailable``, the message stays failed.

    A no-op in any state but failed.
    """
    sms = SmsMessage.objects.get(pk=sms_message_id)
    if sms.status != SmsStatus.FAILED:
        return sms
    failed_at = sms.updated_at
    try:
        found = _find_at_provider(
            sms, since=sms.created_at - SENDING_TAKEOVER_MARGIN, also_exclude=sms.provider_id
        )
    except SmsTransientError as exc:
        logger.warning("SMS %s: resend refused, the provider cannot be asked: %s", sms.pk, exc)
        raise SmsProviderUnavailable() from exc
    if found is not None and _TWILIO_STATUS.get(found.status) != SmsStatus.FAILED:
        return _sms_record_found_after_failure(
            sms_message_id=sms.pk, found=found, failed_at=failed_at, actor=actor
        )
    return _sms_requeue_failed(sms_message_id=sms.pk, actor=actor)


def _sms_resend_record(sms: SmsMessage, *, actor: Actor, outcome: str) -> None:
    """The audit row of a resend: requeued, or found already sent at the provider."""
    audit_record(
        actor=actor,
        action="sms.resent",
        obj=sms,
        params={
            "to": sms.to,
            "purpose": sms.purpose,
            "outcome": outcome,
            "return": sms.related_return_id,
        },
    )


@transaction.atomic
def _sms_record_found_after_failure(
    *, sms_message_id: int, found: SendResult, failed_at: datetime, actor: Actor
) -> SmsMessage:
    sms = SmsMessage.objects.select_for_update().get(pk=sms_message_id)
    if sms.status != SmsStatus.FAILED or sms.updated_at != failed_at:
        return sms  # someone else resent or settled it meanwhile
    logger.warning(
        "SMS %s was recorded failed but had reached the provider as %s (%s); not resent.",
        sms.pk,
        found.provider_id,
        found.status,
    )
    sms.status = SmsStatus.SENT
    sms.provider_id = found.provider_id
    sms.sent_at = timezone.now()
    sms.error_code = ""
    sms.error_message = ""
    sms.save(
        update_fields=[
            "status",
            "provider_id",
            "sent_at",
            "error_code",
            "error_message",
            "updated_at",
        ]
    )
    _apply_provider_status(sms, found.status)
    _apply_pending_callbacks(sms)
    _sms_resend_record(sms, actor=actor, outcome="found_sent")
    return sms


@transaction.atomic
def _sms_requeue_failed(*, sms_message_id: int, actor: Actor) -> SmsMessage:
    sms = SmsMessage.objects.select_for_update().get(pk=sms_message_id)
    if sms.status != SmsStatus.FAILED:
        return sms
    sms.status = SmsStatus.QUEUED
    sms.error_code = ""
    sms.error_message = ""
    sms.save(update_fields=["status", "error_code", "error_message", "updated_at"])
    _enqueue_send(sms)
    _sms_resend_record(sms, actor=actor, outcome="requeued")
    return sms


@transaction.atomic
def sms_status_update(*, provider_id: str, status: str, error_code: str = "") -> SmsMessage | None:
    """Apply a Twilio status callback. Returns None for a provider id no message carries.

    Callbacks arrive late, out of order and more than once, so the status only moves forward
    (queued < sending < sent < delivered): a replay, or ``sent`` after ``delivered``, changes
    nothing. ``undelivered``/``failed`` fail a message not yet delivered; ``failed`` and
    ``delivered`` are final. A status Twilio adds later is logged and ignored.

    A callback may also arrive *before* our write of Twilio's answer (the SID) commits: it is
    kept as a ``SmsPendingStatusCallback`` (once per SID and status, so replays add nothing)
    and applied when the SID is saved.
    """
    if not provider_id:  # unsent messages all have an empty provider id: never match them
        return None
    _lock_provider_id(provider_id)
    sms = SmsMessage.objects.select_for_update().filter(provider_id=provider_id).first()
    if sms is None:
        if len(provider_id) <= 64 and len(status) <= 32 and len(error_code) <= 32:
            SmsPendingStatusCallback.objects.bulk_create(
                [
                    SmsPendingStatusCallback(
                        provider_id=provider_id, status=status, error_code=error_code
                    )
                ],
                ignore_conflicts=True,
            )
            logger.info("Status %r for %s kept until the SID is saved.", status, provider_id)
        return None
    _apply_provider_status(sms, status, error_code)
    return sms


def _lock_provider_id(provider_id: str) -> None:
    """Serialise, per SID, a callback looking for its message with the write of that SID.

    Without it a callback could find no message (the SID not yet committed) and store itself
    as pending just after the writer looked for pending callbacks: it would never be applied.
    With it, whichever comes second sees what the first committed. A transaction-scoped
    PostgreSQL advisory lock (SQLite, in development, serialises writers anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                [_ADVISORY_LOCK_CLASS, provider_id],
            )


def _apply_pending_callbacks(sms: SmsMessage) -> None:
    """Apply the callbacks that arrived before this message's SID was saved, then drop them.
    The caller has locked the message and saved its SID in the current transaction."""
    _lock_provider_id(sms.provider_id)
    pending = list(SmsPendingStatusCallback.objects.filter(provider_id=sms.provider_id))
    if not pending:
        return
    for callback in sorted(pending, key=_callback_order):
        _apply_provider_status(sms, callback.status, callback.error_code)
    SmsPendingStatusCallback.objects.filter(pk__in=[c.pk for c in pending]).delete()
    logger.info("SMS %s: applied %d status callbacks that came early.", sms.pk, len(pending))


def _callback_order(callback: SmsPendingStatusCallback) -> tuple[int, datetime]:
    target = _TWILIO_STATUS.get(callback.status)
    rank = _STATUS_RANK.get(target, len(_STATUS_RANK)) if target is not None else -1
    return (rank, callback.received_at)


def _apply_provider_status(sms: SmsMessage, status: str, error_code: str = "") -> None:
    """The forward-only status rules, on a row the caller has locked."""
    target = _TWILIO_STATUS.get(status)
    if target is None:
        logger.warning("SMS %s: ignoring unknown Twilio status %r.", sms.pk, status)
        return
    if sms.status in (SmsStatus.FAILED, SmsStatus.DELIVERED):
        return
    if target == SmsStatus.FAILED:
        sms.status = SmsStatus.FAILED
        sms.error_code = error_code
        sms.error_message = f"Twilio reported the message {status}."
        sms.save(update_fields=["status", "error_code", "error_message", "updated_at"])
        return
    if _STATUS_RANK[target] <= _STATUS_RANK[SmsStatus(sms.status)]:
        return
    sms.status = target
    update_fields = ["status", "updated_at"]
    if target == SmsStatus.DELIVERED:
        sms.delivered_at = timezone.now()
        update_fields.append("delivered_at")
    sms.save(update_fields=update_fields)


def sms_status_reconcile(*, older_than: timedelta, give_up_after: timedelta, limit: int) -> int:
    """Ask the provider about sent messages that have no final status yet; returns how many
    were checked.

    A callback can be lost (our site down when Twilio called, a callback URL not configured),
    leaving a message *sent* although it was delivered or failed. Beat runs this every
    ``SMS_STATUS_RECONCILE_INTERVAL_SECONDS``: messages *sent* more than ``older_than`` ago
    (their callback had its chance) and less than ``give_up_after`` ago, not checked within
    ``older_than``, the least recently checked first, at most ``limit`` per run. Each answer
    is applied by the callbacks' forward-only rules. The provider is called outside any
    transaction; when it cannot answer, the run stops and the rest waits for the next one.
    """
    now = timezone.now()
    due = (
        SmsMessage.objects.filter(
            status=SmsStatus.SENT,
            sent_at__lt=now - older_than,
            sent_at__gte=now - give_up_after,
        )
        .exclude(provider_id="")
        .filter(Q(status_checked_at__isnull=True) | Q(status_checked_at__lt=now - older_than))
        .order_by(F("status_checked_at").asc(nulls_first=True), "sent_at")
        .values_list("pk", "provider_id")[:limit]
    )
    backend = get_sms_backend()
    checked = 0
    for sms_message_id, provider_id in list(due):
        try:
            found = backend.fetch_status(provider_id=provider_id)
        except SmsTransientError as exc:
            logger.warning("SMS status reconciliation stopped after %d messages: %s", checked, exc)
            break
        _sms_status_checked(sms_message_id=sms_message_id, provider_id=provider_id, found=found)
        checked += 1
    if checked:
        logger.info("SMS status reconciliation: asked the provider about %d messages.", checked)
    return checked


@transaction.atomic
def _sms_status_checked(
    *, sms_message_id: int, provider_id: str, found: ProviderStatus | None
) -> None:
    if found is None:
        logger.warning("SMS %s: the provider does not know %s.", sms_message_id, provider_id)
    else:
        sms_status_update(provider_id=provider_id, status=found.status, error_code=found.error_code)
    # ``update()``: the check is bookkeeping, not a change of the message (updated_at stays).
    SmsMessage.objects.filter(pk=sms_message_id).update(status_checked_at=timezone.now())


@transaction.atomic
def sms_pending_callbacks_purge(*, older_than: timedelta) -> int:
    """Delete early status callbacks that no message claimed within ``older_than`` (they are
    for messages this application did not send). Returns how many were deleted."""
    deleted, _by_model = SmsPendingStatusCallback.objects.filter(
        received_at__lte=timezone.now() - older_than
    ).delete()
    if deleted:
        logger.info("Dropped %d status callbacks no message claimed.", deleted)
    return deleted


def _enqueue_email(email: EmailNotification) -> None:
    from notifications.tasks import email_send_task

    enqueue_on_commit(email_send_task, email.id)


def email_notification_queue(
    *,
    to: str,
    purpose: str,
    template: str,
    params: Params,
    idempotency_key: str,
    language: str = "zh-hans",
    related_return_id: int | None = None,
) -> EmailNotification:
    """Record an email for one event and send it after the caller's transaction commits: the
    SMS's text from the same template, in ``language``, with the typed text whole (quoted),
    plain text. Idempotent on ``idempotency_key`` like ``sms_message_queue``."""
    params = dict(params)
    subject = email_subject(template, params, language=language)
    body = email_body(template, params, language=language)
    return _queue_once(
        EmailNotification,
        _enqueue_email,
        idempotency_key=idempotency_key,
        to=to,
        subject=subject,
        body=body,
        template=template,
        params=params,
        purpose=purpose,
        language=language,
        related_return_id=related_return_id,
    )


def email_notification_send(*, email_notification_id: int) -> bool:
    """Send a queued email; False when there is nothing to do (already sent or failed).

    Sent outside any transaction (the mail server may be slow), then marked sent; a crash
    between the two sends it again on retry, the safe side for a notice (as the invoice
    email does). A mail server error propagates: the task retries it.
    """
    email = EmailNotification.objects.get(pk=email_notification_id)
    if email.status != EmailStatus.QUEUED:
        return False
    EmailNotification.objects.filter(pk=email.pk).update(attempts=F("attempts") + 1)
    EmailMessage(subject=email.subject, body=email.body, to=[email.to]).send()
    EmailNotification.objects.filter(pk=email.pk, status=EmailStatus.QUEUED).update(
        status=EmailStatus.SENT, sent_at=timezone.now(), updated_at=timezone.now()
    )
    return True


def email_notification_give_up(*, email_notification_id: int, error: str) -> None:
    """The task ran out of retries: the email is failed, with why, for staff to see."""
    EmailNotification.objects.filter(pk=email_notification_id, status=EmailStatus.QUEUED).update(
        status=EmailStatus.FAILED, error_message=error[:2000], updated_at=timezone.now()
    )
