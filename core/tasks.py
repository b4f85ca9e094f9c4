"""The background back-office action's task: an id in, ``core.bulk`` does the work."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from core.bulk import bulk_action_advance


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=settings.TASK_LONGEST_COUNTDOWN_SECONDS,
    retry_jitter=True,
    max_retries=30,
)
def bulk_action_advance_task(bulk_action_id: int) -> None:
    """One slice of the action's rows; the slice writes the task of the next one. Run twice
    (a redelivery), the two take turns over the rows and neither does a row twice."""
    bulk_action_advance(bulk_action_id=bulk_action_id)
