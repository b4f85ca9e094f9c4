"""Thin tasks: ids in, a service does the work, the task owns the retry policy."""

import datetime as dt
from typing import Any

from billiard.einfo import ExceptionInfo
from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings
from django.db import InterfaceError, OperationalError

from returns.services import (
    return_request_mark_failed,
    return_request_process,
    returns_requeue_stuck,
)


class ReturnProcessTask(DjangoTask):
    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        """An unexpected error (a bug) or exhausted retries: record it, never lose it."""
        return_request_id = kwargs.get("return_request_id", args[0] if args else None)
        if return_request_id is not None:
            return_request_mark_failed(
                return_request_id=return_request_id, error=f"{exc.__class__.__name__}: {exc}"
            )


@shared_task(
    bind=True,
    base=ReturnProcessTask,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def return_process_task(self: ReturnProcessTask, return_request_id: int) -> None:
    return_request_process(return_request_id=return_request_id)


@shared_task
def returns_requeue_stuck_task() -> None:
    """Celery beat, every ``SWEEP_INTERVAL_SECONDS``: re-enqueue returns stuck in processing."""
    returns_requeue_stuck(
        older_than=dt.timedelta(seconds=settings.RETURN_PROCESSING_REQUEUE_AFTER_SECONDS)
    )
