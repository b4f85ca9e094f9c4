"""Message keys: what the system says is stored as a key and its parameters, and worded in the
reader's language when it is shown (never in the language of whoever was active when it was
written). Each app registers its keys when it is ready (``<app>/messages.py``).

A message is a lazy string with ``%(name)s`` placeholders, or a function of the parameters
that returns the text in the active language (for parameters that are themselves worded:
a state, a list of missing parts, a reason chosen from a list)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _

Params = Mapping[str, Any]
Text = Promise | Callable[[Params], str]


@dataclass(frozen=True)
class Message:
    key: str
    text: Text
    customer_visible: bool  # an audit action the customer's timeline shows (their own return)

    def render(self, params: Params) -> str:
        if callable(self.text) and not isinstance(self.text, Promise):
            return self.text(params)
        return str(self.text) % params if params else str(self.text)


_REGISTRY: dict[str, Message] = {}


def message_register(key: str, text: Text, *, customer_visible: bool = False) -> None:
    _REGISTRY[key] = Message(key, text, customer_visible)


def message_get(key: str) -> Message | None:
    return _REGISTRY.get(key)


def message_render(key: str, params: Params | None = None) -> str:
    """The message in the active language; the key itself when it is unknown or its
    parameters do not fit (an old row after a wording changed): never an error on a page."""
    message = _REGISTRY.get(key)
    if message is None:
        return key
    try:
        return message.render(params or {})
    except (KeyError, TypeError, ValueError):
        return key


def message_keys_visible_to_customers() -> list[str]:
    return sorted(key for key, message in _REGISTRY.items() if message.customer_visible)


def _exported(params: Params) -> str:
    """The list by its model's name in the reader's language."""
    from django.apps import apps

    try:
        name = str(apps.get_model(params["list"])._meta.verbose_name_plural)
    except LookupError:
        name = params["list"]
    return _("Exported %(list)s as %(format)s (filters: %(query)s)") % {**params, "list": name}


# The exports (core.admin.ExportMixin) are core's own action.
message_register("export.downloaded", _exported)
