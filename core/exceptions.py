"""The base of every domain error: its message says what went wrong, in words to act on."""

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """Base class of every business-rule refusal. ``str(error)`` is shown to people."""

    default_message = _("This action is not allowed.")

    def __init__(self, message: str | None = None) -> None:
        super().__init__(str(message or self.default_message))
        self.message = str(message or self.default_message)
