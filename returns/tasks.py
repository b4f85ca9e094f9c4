"""Thin tasks: ids in, a service does the work, the task owns the retry policy."""

import datetime as dt
import logging
from typing import Any

from billiard.einfo import ExceptionInfo
from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings
from django.db import InterfaceError, OperationalError

from core.audit.actor import Actor
from core.enqueue import enqueue
from invoices.taxsystem.interface import TaxSystemTransientError
from returns.models import ReturnState
from returns.services.overdue import returns_chase_paper
from returns.services.processing import (
    return_request_mark_failed,
    return_request_process,
    return_tax_poll,
    return_tax_submit,
)
from returns.services.sweeper import returns_repoll_tax, returns_requeue_stuck

logger = logging.getLogger(__name__)

# How often a pending tax-system result is asked for before the return is marked failed (for
# staff to retry); with the sandbox's 5 s and a provider's 30 s that is minutes to hours.
TAX_POLL_MAX_RETRIES = 40
# After a transient refusal of the processing task's own submission, the submit task tries
# again this much later (then with its own backoff).
SUBMIT_AGAIN_AFTER = 1.0


def poll_countdown(poll_after: float) -> float:
    """How long to wait before asking the tax system for a result: what the backend asks, but
    never past ``TASK_LONGEST_COUNTDOWN_SECONDS``, which the broker's visibility timeout is
    sized for (a longer wait would have the message handed to a second worker meanwhile)."""
    return min(poll_after, float(settings.TASK_LONGEST_COUNTDOWN_SECONDS))


class ReturnProcessTask(DjangoTask):
    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        """An unexpected error (a bug) or exhausted retries: record it, never lose it. Not
        when the database was the problem: the return is fine, and the task's outbox row,
        kept for it, has the relay publish it again (core/outbox.py)."""
        if isinstance(exc, (OperationalError, InterfaceError)):
            logger.warning(
                "%s%r gave up after database errors (%s); the outbox relay publishes it again.",
                self.name,
                args,
                exc.__class__.__name__,
            )
            return
        return_request_id = kwargs.get("return_request_id", args[0] if args else None)
        if return_request_id is not None:
            return_request_mark_failed(
                return_request_id=return_request_id,
                error=f"{exc.__class__.__name__}: {exc}",
                actor=Actor.system(self.name),
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
    """Process the return, then hand its request to the tax system in this same task (one
    task fewer a return when the backend answers at once). A transient refusal is left to
    ``return_tax_submit_task`` and its retry policy; a pending answer to the poll task.

    Run again (a redelivery, the outbox relay after a worker died between the two steps), it
    finds the return awaiting the tax system and submits it: the same serial acts once."""
    actor = Actor.system(self.name)
    rr = return_request_process(
        return_request_id=return_request_id, actor=actor, submitted_by_caller=True
    )
    if rr.state != ReturnState.AWAITING_TAX:
        return
    try:
        poll_after = return_tax_submit(return_request_id=return_request_id, actor=actor)
    except TaxSystemTransientError as exc:
        logger.info("return %s: %s; the submit task tries again.", return_request_id, exc)
        enqueue(return_tax_submit_task, return_request_id, countdown=SUBMIT_AGAIN_AFTER)
        return
    if poll_after is not None:
        # A broker blip here is logged, not a failed return: the sweeper asks again later.
        enqueue(return_tax_poll_task, return_request_id, countdown=poll_countdown(poll_after))


@shared_task(
    bind=True,
    base=ReturnProcessTask,
    acks_late=True,
    autoretry_for=(TaxSystemTransientError, OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=settings.TASK_LONGEST_COUNTDOWN_SECONDS,
    retry_jitter=True,
    max_retries=8,
)
def return_tax_submit_task(self: ReturnProcessTask, return_request_id: int) -> None:
    """Submit the return's request to the tax system (idempotent by its serial), then ask for
    the result when the backend answers asynchronously."""
    poll_after = return_tax_submit(
        return_request_id=return_request_id, actor=Actor.system(self.name)
    )
    if poll_after is not None:
        # A broker blip here is logged, not a failed return: the sweeper asks again later.
        enqueue(return_tax_poll_task, return_request_id, countdown=poll_countdown(poll_after))


@shared_task(
    bind=True,
    base=ReturnProcessTask,
    acks_late=True,
    autoretry_for=(TaxSystemTransientError, OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=settings.TASK_LONGEST_COUNTDOWN_SECONDS,
    retry_jitter=True,
    max_retries=TAX_POLL_MAX_RETRIES,
)
def return_tax_poll_task(self: ReturnProcessTask, return_request_id: int) -> None:
    """Ask for the result; still pending → ask again later (a retry, so it is bounded).

    Run eagerly (no worker, so no timer), a pending answer is left to the sweeper.
    """
    poll_after = return_tax_poll(return_request_id=return_request_id, actor=Actor.system(self.name))
    if poll_after is not None and not self.request.is_eager:
        raise self.retry(countdown=max(poll_countdown(poll_after), 1.0))


@shared_task
def returns_requeue_stuck_task() -> None:
    """Celery beat, every ``SWEEP_INTERVAL_SECONDS``: re-enqueue returns stuck in processing,
    and ask again about returns waiting on an asynchronous tax system."""
    returns_requeue_stuck(
        older_than=dt.timedelta(seconds=settings.RETURN_PROCESSING_REQUEUE_AFTER_SECONDS)
    )
    returns_repoll_tax(older_than=dt.timedelta(seconds=settings.TAX_POLL_REQUEUE_AFTER_SECONDS))


@shared_task
def returns_chase_paper_task() -> None:
    """Celery beat, daily: remind customers whose paper has not come (14 and 30 days after
    Refund, once each) and close their returns after 60 days. Running it twice, or late,
    sends nothing twice."""
    returns_chase_paper(actor=Actor.system(returns_chase_paper_task.name))
