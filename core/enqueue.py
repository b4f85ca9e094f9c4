"""Publishing a task after commit without letting a broker outage break the committed work.

``task.delay_on_commit(...)`` publishes in an ``on_commit`` callback; when Redis is down the
publish raises there, after the database work has committed, and the user who just succeeded
sees a 500. ``enqueue_on_commit`` publishes the same way but catches the broker's failure, logs
it and leaves the row as it is: the work is in the database (a return in ``processing``, an SMS
in ``queued``) and the periodic sweeper publishes it again once the broker is back.

It lives in ``core`` because every app enqueues; it knows nothing about any app's models.
"""

import logging
from typing import Any

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

from core.correlation import correlation_id, correlation_id_reset, correlation_id_set

logger = logging.getLogger(__name__)


def enqueue(task: Task, *args: Any, countdown: float | None = None) -> bool:
    """Publish ``task`` with positional ids now (to run after ``countdown`` seconds, if given).
    False (and a log line) when the broker is down.

    Only the broker's own failure is caught: in eager mode (development, tests) the task runs
    here and its errors behave as they would without this helper.
    """
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

    The task carries the correlation id current now, whenever the commit runs the callback."""
    current = correlation_id()

    def publish() -> None:
        token = correlation_id_set(current) if current else None
        try:
            enqueue(task, *args)
        finally:
            if token is not None:
                correlation_id_reset(token)

    transaction.on_commit(publish)
