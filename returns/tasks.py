"""Thin tasks: ids in, a service does the work, the task owns the retry policy."""

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.db import InterfaceError, OperationalError

from returns.services import return_request_mark_failed, return_request_process


class ReturnProcessTask(DjangoTask):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
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
def return_process_task(self, return_request_id: int) -> None:
    return_request_process(return_request_id=return_request_id)
