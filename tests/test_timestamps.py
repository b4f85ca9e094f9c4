"""PostgreSQL's timestamps read with the standard library's ISO parser (core.timestamps): the
same values as Django's own loader, whatever the text, the time zones or the overflow."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.adapt import AdaptersMap
from psycopg.pq import Format

from core.timestamps import IsoTzLoader, loader_for

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's loader"),
]

TEXTS = [
    "2026-11-30 19:36:08.123456+00",
    "2026-11-30 19:36:08+00",
    "2026-11-30 19:36:08.5+00",
    "2026-11-30 19:36:08.000001+00",
    "2026-11-30 19:36:08.12+05:30",
    "2026-11-30 19:36:08-08",
    "2026-03-29 01:30:00+01",
    "1900-01-01 00:00:00+00:19:32",
    "0099-01-01 12:00:00+00",
    "0001-01-01 00:00:00+00",
    "0001-01-01 00:00:00+01",  # before the first instant Python has: overflows
    "9999-12-31 23:59:59.999999+00",
    "9999-12-31 23:59:59-01",  # past the last: overflows
    "0001-01-01 00:00:00+00 BC",
    "10000-01-01 00:00:00+00",
    "infinity",
    "-infinity",
    "2026-02-30 00:00:00+00",
    "not a timestamp",
]


def _django_loader(timezone):
    """The loader Django registers for ``timezone`` (``register_tzloader``)."""
    adapters = AdaptersMap(connection.connection.adapters)
    register_tzloader(timezone, adapters)
    return adapters.get_loader(1184, Format.TEXT)


def _outcome(loader_class, text: str, context):
    try:
        value = loader_class(1184, context).load(text.encode())
    except Exception as error:  # the errors are compared too
        return type(error), str(error)
    return value, getattr(value, "tzinfo", None)


@pytest.mark.parametrize("timezone", [dt.UTC, ZoneInfo("Asia/Shanghai"), None])
@pytest.mark.parametrize("session_zone", ["UTC", "Asia/Shanghai", "America/New_York"])
@pytest.mark.parametrize("text", TEXTS)
def test_a_timestamp_reads_as_djangos_loader_reads_it(text, timezone, session_zone):
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('TimeZone', %s, false)", [session_zone])
    try:
        theirs = _outcome(_django_loader(timezone), text, connection.connection)
        ours = _outcome(loader_for(timezone), text, connection.connection)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('TimeZone', 'UTC', false)")
    assert ours == theirs


def test_the_iso_text_is_parsed_without_djangos_loader(monkeypatch):
    from psycopg.types.datetime import TimestamptzLoader

    def not_called(self, data):
        raise AssertionError("parsed by psycopg's Python loader")

    connection.ensure_connection()
    monkeypatch.setattr(TimestamptzLoader, "load", not_called)
    value = loader_for(dt.UTC)(1184, connection.connection).load(b"2026-11-30 19:36:08.5+08")
    assert value == dt.datetime(2026, 11, 30, 11, 36, 8, 500000, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 11, 30, 19, 36, 8, 123456, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 30, 19, 36, 8, tzinfo=ZoneInfo("Asia/Shanghai")),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ],
)
def test_the_connections_read_timestamps_with_it_as_django_would(value):
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(1184, Format.TEXT)
    assert issubclass(loader, IsoTzLoader)
    assert loader.timezone == connection.timezone  # what Django's create_cursor checks
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [value])
        (read,) = cursor.fetchone()
    assert read == value
    assert read.tzinfo is connection.timezone
    theirs = _django_loader(connection.timezone)(1184, connection.connection)
    assert read == theirs.load(read.isoformat(sep=" ").encode())
