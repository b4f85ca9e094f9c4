"""The audit actions of notifications, worded in the reader's language."""

from django.utils.translation import gettext_lazy

from core.audit.messages import message_register


def register() -> None:
    message_register("sms.resent", gettext_lazy("SMS to %(to)s resent (%(outcome)s)"))
