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

from django.db import connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


@cache
def _shape(model: type[Model], alias: str) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
    """The select list of ``model``'s concrete columns under ``alias``, their attribute names
    and, for each, its converters with the column they convert (none on PostgreSQL for the
    models read here; SQLite's dates and decimals need them)."""
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    select = ", ".join(f"{alias}.{quote(str(field.column))}" for field in fields)
    converters = tuple(
        (
            index,
            tuple(connection.ops.get_db_converters(col) + field.get_db_converters(connection)),
            col,
        )
        for index, field in enumerate(fields)
        for col in [field.get_col(alias)]
    )
    return select, tuple(field.attname for field in fields), converters


def columns(model: type[Model], alias: str) -> str:
    """``alias."col1", alias."col2", …``: every concrete column of ``model``, in field order."""
    return _shape(model, alias)[0]


def width(model: type[Model]) -> int:
    """How many values ``columns`` selects."""
    return len(model._meta.concrete_fields)


def instance(model: type[M], values: Sequence[Any]) -> M:
    """The model instance for the values ``columns(model, …)`` selected, as the ORM makes it."""
    _select, attnames, converters = _shape(model, "_")
    row = list(values)
    for index, functions, col in converters:
        for function in functions:
            row[index] = function(row[index], col, connection)
    return model.from_db(connection.alias, attnames, row)


def field_value(model: type[Model], field_name: str, value: Any) -> Any:
    """``value``, read by plain SQL from a column of ``model.field_name``'s type (its own column
    or another of the same type), converted as the ORM converts that field's values."""
    col, converters = _field_converters(model, field_name)
    for convert in converters:
        value = convert(value, col, connection)
    return value


@cache
def _field_converters(model: type[Model], field_name: str) -> tuple[Any, tuple[Any, ...]]:
    """The column of ``model.field_name`` and the converters ``field_value`` applies (none on
    PostgreSQL for dates and times; SQLite's need them): looked up once, not per value."""
    field = cast(Field, model._meta.get_field(field_name))  # a concrete field, not a relation
    col = field.get_col(model._meta.db_table)
    return col, tuple(connection.ops.get_db_converters(col) + field.get_db_converters(connection))


def placeholders(values: Sequence[Any]) -> str:
    """``%s, %s, …``: one parameter for each value (an ``IN (…)`` list on every backend)."""
    return ", ".join(["%s"] * len(values))
