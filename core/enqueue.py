"""Publishing a task after commit without letting a broker outage break the committed work,
and without losing the task.

With a broker (production), ``enqueue_on_commit`` writes the task into the outbox in the
caller's transaction and publishes it right after the commit (``core.outbox``): a broker
outage is logged once, the user who just succeeded sees their success page, and the relay
publishes the row as soon as the broker is back; a worker that dies holding the message has
it published again within seconds. In eager mode (development without a broker, and tests)
the task runs on commit, in process, as ``task.delay_on_commit`` would.

It lives in ``core`` because every app enqueues; it knows nothing about any app's models.
"""

import logging
from typing import Any

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

from core.correlation import correlation_id, correlation_id_reset, correlation_id_set
from core.outbox import outbox_enabled, outbox_enqueue

logger = logging.getLogger(__name__)


def enqueue(task: Task, *args: Any, countdown: float | None = None) -> bool:
    """Publish ``task`` with positional ids now (to run after ``countdown`` seconds, if given);
    inside a transaction, once it commits. False (and a log line) when the broker is down: with
    a broker the outbox row stays for the relay.

    Only the broker's own failure is caught: in eager mode (development, tests) the task runs
    here and its errors behave as they would without this helper.
    """
    if outbox_enabled(task):
        outcome = outbox_enqueue(task.name, args, countdown=countdown)
        return all(outcome)
    try:
        if countdown is None:
            task.delay(*args)
        else:
            task.apply_async(args, countdown=countdown)
    except BrokerError as exc:
        logger.error(
            "Could not publish %s%r, the broker is unreachable (%s); the sweeper will retry.",
            task.name,
            args,
            exc,
        )
        return False
    return True


def enqueue_on_commit(task: Task, *args: Any) -> None:
    """Publish ``task`` after the current transaction commits; a broker outage is logged only.

    With a broker the task is written to the outbox in this transaction (``core.outbox``):
    it exists exactly when the change it follows committed, and is published until a worker
    finishes it. The task carries the correlation id current now, whenever it is published."""
    if outbox_enabled(task):
        outbox_enqueue(task.name, args)
        return
    current = correlation_id()

    def publish() -> None:
        token = correlation_id_set(current) if current else None
        try:
            enqueue(task, *args)
        finally:
            if token is not None:
                correlation_id_reset(token)

    transaction.on_commit(publish)
