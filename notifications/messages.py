"""The audit actions of notifications, worded in the reader's language."""

from django.utils.translation import gettext as _

from core.audit.messages import Params, message_register


def _resent(params: Params) -> str:
    if params["outcome"] == "found_sent":
        return _("SMS to %(to)s found sent at the provider: not sent again") % params
    return _("SMS to %(to)s queued to be sent again") % params


def register() -> None:
    message_register("sms.resent", _resent)
