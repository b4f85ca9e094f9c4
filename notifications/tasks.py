"""The SMS and email send tasks: ids in, the service does the work, the task owns the retry
policy."""

import logging
import smtplib
from contextlib import suppress
from datetime import timedelta
from typing import Any

from billiard.einfo import ExceptionInfo
from celery import shared_task
from celery.contrib.django.task import DjangoTask
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import DatabaseError, connections

from core.outage import OutageLog
from notifications.exceptions import SmsOutcomeNotRecorded, SmsTransientError
from notifications.models import SmsStatus
from notifications.services import (
    DATABASE_ERRORS,
    email_notification_give_up,
    email_notification_send,
    sms_outcome_record,
    sms_pending_callbacks_purge,
    sms_requeue_stuck,
    sms_send,
    sms_sending_settles_in,
    sms_settle_after_giving_up,
    sms_status_reconcile,
)

logger = logging.getLogger(__name__)

# Twilio's transient errors (5xx, 429, connect timeouts): 6 retries, backoff up to 600 s.
SEND_MAX_RETRIES = 6
SEND_RETRY_BACKOFF_MAX = 600
# Database errors (connections terminated by a failover, a pooler, an operator): retried longer
# and closer together, since the SMS itself is fine: at most 10 s apart, so a message waits at
# most that long once the database is back; about two and a half minutes in all on average.
# When they run out the message is left as it is, never failed, and its outbox row is kept:
# the relay publishes the task again once no worker holds it (core/outbox.py).
DATABASE_MAX_RETRIES = 30
DATABASE_RETRY_BACKOFF_MAX = 10

# One warning per database outage in this process, not one per retry (notifications/outage.py).
database_outage = OutageLog(logger, "The database (SMS sending)")


def _close_broken_connections() -> None:
    """Drop connections a database error left unusable, so the retry opens a new one
    (``close_old_connections`` without touching a connection inside a transaction: in eager
    mode the task runs inside the caller's, or a test's)."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            with suppress(DatabaseError):
                conn.close_if_unusable_or_obsolete()


def _backoff(retries: int, maximum: int) -> int:
    return int(
        get_exponential_backoff_interval(
            factor=1, retries=retries, maximum=maximum, full_jitter=True
        )
    )


class SmsSendTask(DjangoTask):
    """Settles a send that finally failed on the message, so no failure is silent (R8).

    Eager mode (development without a broker, and tests) runs the task inside the
    ``on_commit`` of the transaction that queued the SMS. With ``task_eager_propagates`` Celery
    would raise its ``Retry`` into that code instead of retrying, and an SMS problem would break
    the request that completed a return. So this task never propagates in eager mode: retries
    run at once, in process, and the final failure reaches ``on_failure`` as on a worker.
    """

    def apply(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("throw", False)
        return super().apply(*args, **kwargs)

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo | None,
    ) -> None:
        """Never raises: a worker must not die of a message it could not settle."""
        sms_message_id = kwargs["sms_message_id"] if "sms_message_id" in kwargs else args[0]
        if isinstance(exc, (*DATABASE_ERRORS, SmsOutcomeNotRecorded)):
            # The database, not the message, is the problem: whatever state it is in (queued,
            # or sending with an answer not written), the sweeper takes it up again.
            logger.warning(
                "SMS %s: task %s gave up after database errors (%s); the message is left as "
                "it is and the sweeper sends or settles it once the database is back.",
                sms_message_id,
                task_id,
                exc.__class__.__name__,
            )
            return
        try:
            sms_settle_after_giving_up(
                sms_message_id=sms_message_id,
                error=f"Gave up after task {task_id}: {exc.__class__.__name__}: {exc}",
            )
        except DatabaseError as settle_error:
            logger.warning(
                "SMS %s: could not record that task %s gave up (%s: %s); the sweeper will "
                "take it up again.",
                sms_message_id,
                task_id,
                settle_error.__class__.__name__,
                settle_error,
            )


@shared_task(
    bind=True,
    base=SmsSendTask,
    acks_late=True,
    max_retries=SEND_MAX_RETRIES,
    retry_backoff_max=SEND_RETRY_BACKOFF_MAX,
)
def sms_send_task(
    self: SmsSendTask, sms_message_id: int, outcome: dict[str, str] | None = None
) -> None:
    """Send one SMS (``sms_send`` is idempotent); own the retries.

    - ``SmsTransientError`` (Twilio 5xx, 429, unreachable): retried with backoff and jitter.
    - database errors: retried with backoff after dropping the dead connection. When the
      provider had already answered (``SmsOutcomeNotRecorded``), the retry carries the answer
      in ``outcome`` and writes it first: a message Twilio accepted gets its SID, and is
      never sent again nor failed.
    - the outcome is unknown (no answer in time) or another run is sending it: tried again
      when the sending window has passed, which asks the provider first.
    - anything else: ``on_failure`` settles the message (asking the provider when it may
      have reached it).
    """
    try:
        if outcome is not None:
            sms_outcome_record(sms_message_id=sms_message_id, **outcome)
        sms = sms_send(sms_message_id=sms_message_id)
    except SmsOutcomeNotRecorded as exc:
        raise _retry_after_database_error(self, sms_message_id, exc, exc.outcome) from exc
    except DATABASE_ERRORS as exc:
        raise _retry_after_database_error(self, sms_message_id, exc, outcome) from exc
    except SmsTransientError as exc:
        database_outage.recovered()
        raise self.retry(
            exc=exc, countdown=_backoff(self.request.retries, SEND_RETRY_BACKOFF_MAX)
        ) from exc
    database_outage.recovered()
    if sms.status == SmsStatus.SENDING and not self.request.is_eager:
        # The provider's answer was lost, or another run is sending it: come back when the
        # sending window has passed, and settle it by asking the provider (``sms_send``).
        raise self.retry(countdown=sms_sending_settles_in(sms) + 1)


def _retry_after_database_error(
    task: SmsSendTask,
    sms_message_id: int,
    exc: Exception,
    outcome: dict[str, str] | None,
) -> BaseException:
    database_outage.failed(exc)
    _close_broken_connections()
    return task.retry(
        args=(sms_message_id,),
        kwargs={} if outcome is None else {"outcome": outcome},
        exc=exc,
        countdown=_backoff(task.request.retries, DATABASE_RETRY_BACKOFF_MAX),
        max_retries=DATABASE_MAX_RETRIES,
    )


@shared_task
def sms_requeue_stuck_task() -> None:
    """Celery beat, every ``SWEEP_INTERVAL_SECONDS``: re-enqueue SMS stuck in queued/sending."""
    sms_requeue_stuck(older_than=timedelta(seconds=settings.SMS_QUEUED_REQUEUE_AFTER_SECONDS))


@shared_task
def sms_status_reconcile_task() -> None:
    """Celery beat, every ``SMS_STATUS_RECONCILE_INTERVAL_SECONDS``: ask Twilio about sent
    messages without a final status (one batch), and drop early callbacks nobody claimed."""
    sms_status_reconcile(
        older_than=timedelta(seconds=settings.SMS_STATUS_RECONCILE_AFTER_SECONDS),
        give_up_after=timedelta(seconds=settings.SMS_STATUS_RECONCILE_FOR_SECONDS),
        limit=settings.SMS_STATUS_RECONCILE_BATCH,
    )
    sms_pending_callbacks_purge(
        older_than=timedelta(seconds=settings.SMS_PENDING_CALLBACK_KEEP_SECONDS)
    )


class EmailSendTask(DjangoTask):
    """Records an email that finally failed on its row, so no failure is silent; like
    ``SmsSendTask``, never propagates in eager mode (a mail server down must not break the
    request that completed a return)."""

    def apply(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("throw", False)
        return super().apply(*args, **kwargs)

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo | None,
    ) -> None:
        email_notification_id = int(kwargs.get("email_notification_id") or args[0])
        with suppress(DatabaseError):
            email_notification_give_up(
                email_notification_id=email_notification_id,
                error=f"Gave up after task {task_id}: {exc.__class__.__name__}: {exc}",
            )


@shared_task(
    base=EmailSendTask,
    acks_late=True,
    autoretry_for=(smtplib.SMTPException, OSError, *DATABASE_ERRORS),
    retry_backoff=True,
    retry_backoff_max=settings.TASK_LONGEST_COUNTDOWN_SECONDS,
    retry_jitter=True,
    max_retries=6,
)
def email_send_task(email_notification_id: int) -> None:
    """Send one notification email (idempotent: a sent one is not sent again)."""
    email_notification_send(email_notification_id=email_notification_id)
