"""Model rows read by hand-written SQL on a hot path (issue 16, P1): shared by every app.

Building and compiling an ORM query with a join and a subquery costs about 1.5 ms of CPU a
statement, several times the database's own work for a primary-key lookup; the Refund POST
read two of them. Its statements are written out here instead, once, with their select lists
generated from the models' own metadata (a new column is read without touching the SQL), and
the rows become model instances through ``Model.from_db`` with the database's converters
applied, as the ORM itself does.
"""

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar, cast

from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    OperationalError,
    connection,
    connections,
)
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, ServerBindingCursor
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.models import Field, Model
from psycopg.pq import Format

M = TypeVar("M", bound=Model)


@cache
def _shape(model: type[Model], alias: str) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
    """The select list of ``model``'s concrete columns under ``alias``, their attribute names
    and, for each column that has converters, its index, converters and column (none on
    PostgreSQL for the models read here; SQLite's dates and decimals need them)."""
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    select = ", ".join(f"{alias}.{quote(str(field.column))}" for field in fields)
    converters = tuple(
        (index, functions, col)
        for index, field in enumerate(fields)
        for col in [field.get_col(alias)]
        for functions in [
            tuple(connection.ops.get_db_converters(col) + field.get_db_converters(connection))
        ]
        if functions  # only the columns that have any: none at all, mostly, on PostgreSQL
    )
    return select, tuple(field.attname for field in fields), converters


def columns(model: type[Model], alias: str) -> str:
    """``alias."col1", alias."col2", …``: every concrete column of ``model``, in field order."""
    return _shape(model, alias)[0]


def width(model: type[Model]) -> int:
    """How many values ``columns`` selects."""
    return len(model._meta.concrete_fields)


def split(row: Sequence[Any], models: Sequence[type[Model]]) -> list[Sequence[Any]]:
    """A row that selected the ``columns`` of several models one after another, cut into the
    values of each, in that order."""
    parts, start = [], 0
    for model in models:
        end = start + width(model)
        parts.append(row[start:end])
        start = end
    return parts


def instance(model: type[M], values: Sequence[Any]) -> M:
    """The model instance for the values ``columns(model, …)`` selected, as the ORM makes it."""
    _select, attnames, converters = _shape(model, "_")
    row = list(values)
    for index, functions, col in converters:
        for function in functions:
            row[index] = function(row[index], col, connection)
    # The proxy's alias is always DEFAULT_DB_ALIAS: named, not looked up through the proxy
    # (a thread-local look-up per instance).
    return model.from_db(DEFAULT_DB_ALIAS, attnames, row)


@cache
def _field_converters(model: type[Model], field_name: str) -> tuple[Any, tuple[Any, ...]]:
    """The column of ``model.field_name`` and the converters ``field_value`` applies (none on
    PostgreSQL for dates and times; SQLite's need them): looked up once, not per value."""
    field = cast(Field, model._meta.get_field(field_name))  # a concrete field, not a relation
    col = field.get_col(model._meta.db_table)
    return col, tuple(connection.ops.get_db_converters(col) + field.get_db_converters(connection))


def field_value(model: type[Model], field_name: str, value: Any) -> Any:
    """``value``, read by plain SQL from a column of ``model.field_name``'s type (its own column
    or another of the same type), converted as the ORM converts that field's values."""
    col, converters = _field_converters(model, field_name)
    for convert in converters:
        value = convert(value, col, connection)
    return value


def placeholders(values: Sequence[Any]) -> str:
    """``%s, %s, …``: one parameter for each value (an ``IN (…)`` list on every backend)."""
    return ", ".join(["%s"] * len(values))


@cache
def _insert_fields(model: type[Model], given: tuple[str, ...]) -> tuple[Field, ...]:
    # What ``Model.save`` inserts for a new row: the local concrete fields but the automatic
    # primary key and generated columns; those of the attributes ``given`` left out.
    meta = model._meta
    return tuple(
        field
        for field in meta.local_concrete_fields
        if field is not meta.auto_field and not field.generated and field.attname not in given
    )


def insert_columns(model: type[Model], given: tuple[str, ...] = ()) -> str:
    """``"col1", "col2", …``: the columns an INSERT of a new ``model`` row writes. The columns
    of the attributes ``given`` come first: the caller writes their values as SQL of its own
    (e.g. the id that an INSERT earlier in the same statement returned); ``insert_values`` and
    ``insert_placeholders`` stand for the others, in field order."""
    quote = connection.ops.quote_name
    fields = [meta_field(model, attname) for attname in given] + list(_insert_fields(model, given))
    return ", ".join(quote(str(field.column)) for field in fields)


def meta_field(model: type[Model], attname: str) -> Field:
    """``model``'s concrete field of the attribute ``attname`` (``invoice_id``, ``reason``)."""
    for field in model._meta.concrete_fields:
        if field.attname == attname:
            return field
    raise LookupError(f"{model.__name__} has no column {attname}")


def insert_placeholders(model: type[Model], given: tuple[str, ...] = ()) -> str:
    """``%s, %s, …``: one parameter for each of ``insert_columns(model, given)`` but ``given``."""
    return placeholders(_insert_fields(model, given))


def insert_values(obj: Model, given: tuple[str, ...] = ()) -> list[Any]:
    """The values of ``insert_placeholders(type(obj), given)`` for the unsaved ``obj``, as
    ``obj.save()`` writes them: each field's ``pre_save`` (``auto_now_add``) and its database
    preparation (JSON, dates). So that one statement can insert rows of several tables (issue
    16, P1); the caller then marks ``obj`` saved with its new id (``saved``)."""
    values = []
    wrapper = connections[DEFAULT_DB_ALIAS]  # not the proxy: looked up once, not per field
    for field in _insert_fields(type(obj), given):
        value = field.pre_save(obj, True)
        if hasattr(value, "resolve_expression"):  # the ORM would compile it: not here
            raise TypeError(f"{field}: an expression cannot be inserted by core.sql")
        values.append(field.get_db_prep_save(value, wrapper))
    return values


@cache
def update_fields(model: type[Model], names: tuple[str, ...]) -> tuple[Field, ...]:
    """``model``'s fields called ``names``, for an UPDATE written out here (``update_set``,
    ``update_values``)."""
    return tuple(cast(Field, model._meta.get_field(name)) for name in names)


def update_set(fields: Sequence[Field]) -> str:
    """``"col1" = %s, "col2" = %s, …``: the SET list of an UPDATE of ``fields``."""
    quote = connection.ops.quote_name
    return ", ".join(f"{quote(cast(str, field.column))} = %s" for field in fields)


def update_values(obj: Model, fields: Sequence[Field]) -> list[Any]:
    """The values ``obj.save(update_fields=…)`` writes to ``fields``: each field's ``pre_save``
    (``auto_now``) and its database preparation, for an UPDATE written out here."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    return [field.get_db_prep_save(field.pre_save(obj, False), wrapper) for field in fields]


def writes_in_with() -> bool:
    """Whether the database runs INSERT and UPDATE inside WITH (PostgreSQL), so that one
    written-out statement can make several writes; elsewhere (SQLite, development) the ORM's
    writes, one by one."""
    return connection.vendor == "postgresql"


def saved(obj: M, pk: Any) -> M:
    """``obj``, inserted by hand-written SQL with the id ``pk``, as ``obj.save()`` leaves it."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = DEFAULT_DB_ALIAS
    return obj


def prepared_cursor(using: str | None = None) -> Any:
    """A cursor for a statement written out here and run on every request: on PostgreSQL its
    parameters are bound by the server, so psycopg may prepare it (``prepare_threshold``, set by
    ``DATABASE_PREPARED_STATEMENTS``) and PostgreSQL plans it once per connection instead of on
    each execution (issue 16, P1: planning the Refund's reads cost more than running them).
    Django's own wrapper around it, as ``connection.cursor()``: the same errors, health check
    and logged queries. The ORM's cursors stay client-side (they are never prepared)."""
    wrapper = connections[using or DEFAULT_DB_ALIAS]
    if wrapper.vendor != "postgresql":
        return wrapper.cursor()
    # What BaseDatabaseWrapper.cursor() and the backend's create_cursor() do, with Django's
    # server-binding cursor class (the one OPTIONS server_side_binding would give every cursor).
    wrapper.close_if_health_check_failed()
    wrapper.ensure_connection()
    wrapper.validate_thread_sharing()
    with wrapper.wrap_database_errors:
        cursor: Any = ServerBindingCursor(wrapper.connection)  # type: ignore[call-arg]
    # As create_cursor(): the cursor reads timestamps in the connection's time zone.
    loader = wrapper.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    if wrapper.timezone != loader.timezone:
        register_tzloader(wrapper.timezone, cursor)
    if wrapper.queries_logged:
        return wrapper.make_debug_cursor(cursor)
    return wrapper.make_cursor(cursor)


def _fetchone(using: str, statement: str, params: Sequence[Any]) -> Any:
    with prepared_cursor(using) as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()


def fetchone_checking_connection(using: str, statement: str, params: Sequence[Any]) -> Any:
    """The one row of a read-only ``statement`` that opens a request (the session's read), run
    as the request's health check of a reused connection (issue 16, P1 and P2).

    With ``CONN_HEALTH_CHECKS`` Django pings a persistent connection (``SELECT 1``) before the
    first statement of each request, a round trip of its own. Here the read itself is the
    ping: when it fails and the connection fails Django's own check (``is_usable``), the
    connection is closed, as Django does after a failed check, and the read is sent again on a
    new one; any other error is raised as it was. Outside a request's first statement, inside
    a transaction, or with a pool (which checks its own connections) it is a plain read."""
    wrapper: Any = connections[using]  # the health-check attributes are not in the stubs
    stands_in = (
        wrapper.vendor == "postgresql"
        and wrapper.connection is not None
        and wrapper.health_check_enabled
        and not wrapper.health_check_done
        and not wrapper.in_atomic_block
        and not wrapper.settings_dict.get("OPTIONS", {}).get("pool")
    )
    if not stands_in:
        return _fetchone(using, statement, params)
    wrapper.health_check_done = True  # this read is the check: no SELECT 1 before it
    try:
        return _fetchone(using, statement, params)
    except (OperationalError, InterfaceError):
        if wrapper.is_usable():
            raise
    wrapper.close()  # as close_if_health_check_failed: the next statement opens a new one
    return _fetchone(using, statement, params)
