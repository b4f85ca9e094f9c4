"""The SMS send task: ids in, the service does the work, the task owns the retry policy."""

from datetime import timedelta
from typing import Any

from billiard.einfo import ExceptionInfo
from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings

from notifications.exceptions import SmsTransientError
from notifications.services import sms_mark_failed, sms_requeue_stuck, sms_send


class SmsSendTask(DjangoTask):
    """Records a send that finally failed on the message, so no failure is silent (R8).

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
        einfo: ExceptionInfo,
    ) -> None:
        sms_message_id = kwargs["sms_message_id"] if "sms_message_id" in kwargs else args[0]
        sms_mark_failed(
            sms_message_id=sms_message_id,
            error=f"Gave up after task {task_id}: {exc.__class__.__name__}: {exc}",
        )


@shared_task(
    bind=True,
    base=SmsSendTask,
    acks_late=True,
    autoretry_for=(SmsTransientError,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
)
def sms_send_task(self: SmsSendTask, sms_message_id: int) -> None:
    sms_send(sms_message_id=sms_message_id)


@shared_task
def sms_requeue_stuck_task() -> None:
    """Celery beat, every ``SWEEP_INTERVAL_SECONDS``: re-enqueue SMS stuck in queued/sending."""
    sms_requeue_stuck(older_than=timedelta(seconds=settings.SMS_QUEUED_REQUEUE_AFTER_SECONDS))
