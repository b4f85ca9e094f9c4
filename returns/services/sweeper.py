"""The sweepers: publish again the tasks of returns that may have lost theirs.

A last resort with long thresholds: the task outbox (core/outbox.py) publishes a task the
broker refused, or whose worker died, within seconds; these catch what it cannot see."""

import datetime as dt
import logging

from celery import Task
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from invoices.taxsystem.services import tax_backends_answering_by_themselves
from returns.models import ReturnRequest
from returns.selectors import returns_awaiting_tax_system, returns_stuck_processing

logger = logging.getLogger(__name__)


# At most this many returns are re-enqueued per sweep; the next sweep takes the rest.
REQUEUE_BATCH = 500


@transaction.atomic
def returns_requeue_stuck(*, older_than: dt.timedelta) -> list[int]:
    """The sweeper: publish the processing task again for returns that may have lost theirs.

    A return in *processing* whose row has not changed for ``older_than`` may have no live
    task: the broker was down at commit (``enqueue_on_commit`` logged it), or a message was
    lost. Re-enqueuing is safe because ``return_request_process`` is idempotent. Rows locked
    right now belong to a task that is processing them and are skipped (``skip_locked``), and
    ``updated_at`` is touched so a backlog is not re-enqueued again on every sweep. Returns the
    ids enqueued.
    """
    from returns.tasks import return_process_task

    return _requeue(returns_stuck_processing(), older_than=older_than, task=return_process_task)


@transaction.atomic
def returns_repoll_tax(*, older_than: dt.timedelta) -> list[int]:
    """The sweeper for returns *awaiting the tax system* on an asynchronous backend: submit
    again (the same serial acts once) and so ask for the result. Nothing to do when finance
    records outcomes by hand (the manual backend's requests are left alone)."""
    from returns.tasks import return_tax_submit_task

    waiting = returns_awaiting_tax_system()
    names = waiting.values_list("tax_request__backend", flat=True).distinct()
    answering = tax_backends_answering_by_themselves(names)
    return _requeue(
        waiting.filter(tax_request__backend__in=answering),
        older_than=older_than,
        task=return_tax_submit_task,
    )


def _requeue(
    returns: QuerySet[ReturnRequest], *, older_than: dt.timedelta, task: Task
) -> list[int]:
    ids = list(
        returns.filter(updated_at__lt=timezone.now() - older_than)
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)[:REQUEUE_BATCH]
    )
    if not ids:
        return ids
    # Only the timestamp moves; no state changes, so no audit event.
    ReturnRequest.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    for return_request_id in ids:
        enqueue_on_commit(task, return_request_id)
    logger.warning("re-enqueued %s for %d returns: %s", task.name, len(ids), ids)
    return ids
