"""The Celery application. Settings come from Django's, under the ``CELERY_`` namespace."""

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

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


@setup_logging.connect
def _logging_as_django(**_: Any) -> None:
    """The worker logs like the web process (settings.LOGGING: JSON in production, with the
    correlation id) instead of installing Celery's own handlers."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
