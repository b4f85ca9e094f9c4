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
    worker_init,
)

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
