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
