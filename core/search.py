"""What the back office's search boxes share."""

import unicodedata

from django.contrib.postgres.expressions import ArraySubquery
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import BooleanField, F, Func, Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal


def search_terms(query: str) -> list[str]:
    """The words of a list's search box as Django's admin splits them (quotes keep a phrase
    together), full-width digits and letters (a Chinese input method's) made ASCII."""
    terms = []
    for bit in smart_split(unicodedata.normalize("NFKC", query or "").strip()):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit:
            terms.append(bit)
    return terms


class _EqualsAny(Func):
    """``expression = ANY(array)``."""

    template = "(%(expressions)s))"
    arg_joiner = " = ANY("
    output_field = BooleanField()


def in_subquery(field: str, subquery: QuerySet, *, using: str = DEFAULT_DB_ALIAS) -> Q:
    """``field IN (subquery)`` as ``field = ANY(ARRAY(subquery))`` in PostgreSQL: the
    subquery runs once, before the scan, and its values are looked up through ``field``'s
    index (a primary key: one probe each), where PostgreSQL may join an ``IN`` by scanning the
    whole table. Its plan assumes a short array: for ids a search found (issue 16, P5). Other
    databases: the IN."""
    if connections[using].vendor != "postgresql":
        return Q(**{f"{field}__in": subquery})
    return Q(_EqualsAny(F(field), ArraySubquery(subquery)))
