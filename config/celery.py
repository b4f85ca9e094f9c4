"""The Celery application. Settings come from Django's, under the ``CELERY_`` namespace."""

import logging.config
import os
from contextlib import suppress
from typing import Any

from celery import Celery
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    task_received,
    worker_init,
    worker_ready,
)
from celery.worker.consumer import Consumer

from core.correlation import (
    task_postrun_reset_correlation_id,
    task_prerun_restore_correlation_id,
    task_publish_add_correlation_id,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The correlation id travels with every task (core/correlation.py).
before_task_publish.connect(task_publish_add_correlation_id, weak=False)
task_prerun.connect(task_prerun_restore_correlation_id, weak=False)
task_postrun.connect(task_postrun_reset_correlation_id, weak=False)


@task_prerun.connect
@task_postrun.connect
def _database_connections_as_django_requests(sender: Any = None, **_: Any) -> None:
    """Around each task, what Django does around each request: close a connection that broke
    or outlived CONN_MAX_AGE, and arm CONN_HEALTH_CHECKS for the next query. The connection is
    kept otherwise (settings.CELERY_DB_REUSE_MAX stops Celery's fix-up closing it every time).
    Eager tasks run inside their caller's transaction (a request's, a test's): left alone."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import DatabaseError, connections

    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            with suppress(DatabaseError):  # the connection is dropped all the same
                conn.close_if_unusable_or_obsolete()


# The task outbox (core/outbox.py): a retry carries its row on; a finished task deletes it; the
# worker's main process keeps the leases of the messages it holds. Imported when called: the
# models are not loaded when this module is.
@before_task_publish.connect
def _outbox_header_follows_retries(**kwargs: Any) -> None:
    from core.outbox import task_publish_keep_outbox_id

    task_publish_keep_outbox_id(**kwargs)


@task_postrun.connect
def _outbox_row_settled(**kwargs: Any) -> None:
    from core.outbox import task_postrun_settle_outbox

    task_postrun_settle_outbox(**kwargs)


@task_received.connect
def _outbox_lease_taken(**kwargs: Any) -> None:
    from core.outbox import task_received_renew_lease

    task_received_renew_lease(**kwargs)


@worker_ready.connect
def _outbox_leases_kept(**kwargs: Any) -> None:
    from core.outbox import worker_ready_keep_leases

    worker_ready_keep_leases(**kwargs)


class QuickReconnectConsumer(Consumer):
    """Celery's consumer, reconnecting to a broker that went away every
    ``BROKER_RECONNECT_MAX_SECONDS`` at most (kombu's default grows to 30 s, which alone would
    spend the 30 s a worker has to finish the work once the broker is back). Each attempt's
    error line is collapsed by the logging filter (core.logging.RepeatedLinesFilter)."""

    def ensure_connected(self, conn: Any) -> Any:
        from django.conf import settings

        ensure = conn.ensure_connection
        cap = float(settings.BROKER_RECONNECT_MAX_SECONDS)

        def quicker(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("interval_start", min(1.0, cap))
            kwargs.setdefault("interval_step", 1.0)
            kwargs.setdefault("interval_max", cap)
            return ensure(*args, **kwargs)

        conn.ensure_connection = quicker
        try:
            return super().ensure_connected(conn)
        finally:
            conn.ensure_connection = ensure

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """Celery closes the lost connection here, and kombu's close hands the messages this
        worker holds unacknowledged (a retry's or a poll's countdown) back to Redis through a
        new client of the closing connection, which fails with an ``AttributeError`` that
        Celery does not expect: the worker died of a broker outage whenever it held a message
        with a countdown. The close is made quiet: the messages it could not hand back are
        published again by the outbox relay (their leases run out; a new Redis is noticed)
        or come back from Redis's unacked set after the visibility timeout."""
        connection = self.connection
        if connection is not None:
            close = connection.close

            def close_quietly() -> None:
                try:
                    close()
                except Exception as error:  # the connection is being dropped all the same
                    logging.getLogger(__name__).warning(
                        "The lost broker connection did not close cleanly (%s: %s); the "
                        "messages it held come back through the outbox relay.",
                        error.__class__.__name__,
                        error,
                    )

            connection.close = close_quietly  # type: ignore[method-assign]
        super().on_connection_error_after_connected(exc)


@worker_init.connect
def _sms_backend_warm_up(**_: Any) -> None:
    """Load the SMS provider's SDK in the worker's main process, before the pool forks: each
    pool process then starts with it instead of importing it on its first send."""
    from notifications.backends import sms_backend_warm_up

    sms_backend_warm_up()


@setup_logging.connect
def _logging_as_django(**_: Any) -> None:
    """The worker logs like the web process (settings.LOGGING: JSON in production, with the
    correlation id) instead of installing Celery's own handlers."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
