"""Moved to ``core.outage`` (every app's outages are logged the same way); kept for imports."""

from core.outage import OutageLog

__all__ = ["OutageLog"]
