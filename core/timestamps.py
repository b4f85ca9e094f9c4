"""PostgreSQL's timestamps read by the standard library's parser (issue 16, P2).

Django reads every ``timestamp with time zone`` through a subclass of psycopg's pure-Python
loader (``psycopg_any.BaseTzLoader``): a regular expression and a dozen integer conversions a
value, about a tenth of an Invoice Management page's CPU (50 timestamps a page).
``datetime.fromisoformat`` parses the same ISO text in C. The value is the one Django's loader
gives: the instant in the connection's time zone, labelled with Django's (``timezone``); any
text it does not take (a BC date, infinity, a year past 9999, another DateStyle) or an
overflow goes through Django's loader unchanged (tests/test_timestamps.py compares both).

A known gap upstream: Django's loader cannot derive from psycopg's C loader, which is final
(Django ticket #36960, psycopg issue #1273). It reads two attributes of psycopg's Python loader
(``_load_method``, ``_timezone``), pinned with psycopg in uv.lock; a psycopg that changes them
fails tests/test_timestamps.py. Drop this module when Django reads timestamps at C speed."""

from datetime import datetime
from functools import cache
from typing import Any

from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from psycopg.types.datetime import TimestamptzLoader

_ISO = TimestamptzLoader._load_iso


class IsoTzLoader(BaseTzLoader):
    """Django's timestamptz loader, parsing ISO text with ``datetime.fromisoformat``."""

    def load(self, data: Any) -> datetime:
        if self._load_method is _ISO:  # DateStyle ISO, as Django's connections have it
            try:
                value = datetime.fromisoformat(str(data, "ascii"))
                return value.astimezone(self._timezone).replace(tzinfo=self.timezone)
            except (ValueError, OverflowError):
                pass
        return super().load(data)


@cache
def loader_for(timezone: Any) -> type[IsoTzLoader]:
    """``IsoTzLoader`` for Django's time zone ``timezone`` (what ``register_tzloader`` makes)."""
    return type("SpecificIsoTzLoader", (IsoTzLoader,), {"timezone": timezone})


@receiver(connection_created, dispatch_uid="core.timestamps")
def use_iso_loader(sender: Any, connection: Any, **kwargs: Any) -> None:
    """A new PostgreSQL connection reads timestamptz with ``IsoTzLoader``, in place of the
    loader Django registered for its time zone (a cursor that needs another zone still gets
    Django's own from ``create_cursor``)."""
    if connection.vendor != "postgresql":
        return
    connection.connection.adapters.register_loader("timestamptz", loader_for(connection.timezone))
