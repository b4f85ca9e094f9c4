"""Scopes: "everything about return 42" spans several objects (the return, its invoice, its
paper, its tax request, its SMS). The app that knows them registers a scope; the audit admin
filters by it (``?scope=return:42``) without importing that app."""

from collections.abc import Callable

from django.db.models import Q

_SCOPES: dict[str, Callable[[int], Q]] = {}


def audit_scope_register(name: str, condition: Callable[[int], Q]) -> None:
    _SCOPES[name] = condition


def audit_scope_condition(value: str) -> Q | None:
    """``"return:42"`` → the condition of the registered scope, or None when unknown."""
    name, _sep, raw_id = value.partition(":")
    if name not in _SCOPES or not raw_id.isdigit():
        return None
    return _SCOPES[name](int(raw_id))
