"""Log lines with the correlation id: JSON in production, one readable line in development."""

import datetime as dt
import json
import logging
from typing import Any

from core.correlation import correlation_id

# The LogRecord attributes every record has; anything else was passed in ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "correlation_id"}


class CorrelationIdFilter(logging.Filter):
    """Put the current correlation id on every record (``%(correlation_id)s``; "-" if none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = correlation_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, correlation id,
    any ``extra=`` fields and the exception, for a log collector to index."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", "") or correlation_id() or None,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class RepeatedLinesFilter(logging.Filter):
    """One line per outage from Celery and kombu, not one per retry or reconnection attempt.

    During an outage Celery logs every task's retry (``Task …[id] retry: Retry in 3s:
    OperationalError(…)``), the retry's arrival (``Task …[id] received``, with an ETA) and
    every failed reconnection (``consumer: Cannot connect to …``): thousands of lines a
    minute. Lines of the ``loggers`` given are grouped by logger and
    message template (task retries also by task name); the first of a group is written, the
    rest within ``window`` seconds are counted, and the first after that says how many were
    not shown. Other lines pass untouched; state is per process.
    """

    RETRY_TEMPLATE_MARK = "retry"

    def __init__(
        self,
        window: float = 60.0,
        loggers: tuple[str, ...] = (
            "celery.app.trace",
            "celery.worker.strategy",
            "celery.worker.consumer",
            "celery.beat",
            "kombu",
        ),
        clock: Any = None,
    ) -> None:
        super().__init__()
        import threading
        import time

        self.window = window
        self.loggers = tuple(loggers)
        self.clock = clock or time.monotonic
        self._groups: dict[tuple[str, str, str], list[float]] = {}
        self._lock = threading.Lock()

    def _key(self, record: logging.LogRecord) -> tuple[str, str, str] | None:
        if not record.name.startswith(self.loggers):
            return None
        template = str(record.msg)
        args = record.args if isinstance(record.args, dict) else {}
        if record.name == "celery.app.trace":
            if self.RETRY_TEMPLATE_MARK not in template:
                return None  # successes and failures are each worth their line
            return (record.name, template, str(args.get("name", "")))
        if record.name == "celery.worker.strategy":
            if not args.get("eta"):
                return None  # a new task's "received" line is worth its line
            # A retry's (or a countdown's) "received": one per task name and window.
            return (record.name, template, str(args.get("name", "")))
        if record.levelno < logging.WARNING:
            return None
        return (record.name, template, "")

    def filter(self, record: logging.LogRecord) -> bool:
        key = self._key(record)
        if key is None:
            return True
        with self._lock:
            now = self.clock()
            group = self._groups.get(key)
            if group is not None and now - group[0] < self.window:
                group[1] += 1
                return False
            self._groups[key] = [now, 0]
            hidden = int(group[1]) if group is not None else 0
        if hidden:
            # Plain text, no % placeholders: the record's own arguments still fill its template.
            record.msg = (
                f"{record.msg} [{hidden} more like this in the last {self.window:.0f} s not shown]"
            )
        return True
