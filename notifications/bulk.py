"""What one row of the SMS resend action does when it runs in the background (``core.bulk``)."""

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.audit.actor import Actor
from core.bulk import BulkActionKind, bulk_action_kind_register
from notifications.exceptions import SmsProviderUnavailable
from notifications.models import SmsMessage, SmsStatus
from notifications.services import sms_resend

REQUEUED = "requeued"
FOUND = "found"
UNAVAILABLE = "unavailable"
SKIPPED = "skipped"


def sms_resend_outcome(sms_message_id: int, actor: Actor, params: Mapping[str, Any]) -> str:
    """Resend one failed message (asking Twilio first whether it went out): what came of it."""
    status = SmsMessage.objects.filter(pk=sms_message_id).values_list("status", flat=True).first()
    if status != SmsStatus.FAILED:
        return SKIPPED
    try:
        sms = sms_resend(sms_message_id=sms_message_id, actor=actor)
    except SmsProviderUnavailable:
        return UNAVAILABLE
    if sms.status == SmsStatus.QUEUED:
        return REQUEUED
    if sms.status in (SmsStatus.SENT, SmsStatus.DELIVERED):
        return FOUND
    return SKIPPED


# Each row may wait on Twilio (a look-up, up to TWILIO_TIMEOUT_SECONDS when it is slow): more
# than a few dozen are resent in the background.
SMS_RESEND = BulkActionKind(
    name="notifications.resend",
    description=_("Resend"),
    outcomes={
        REQUEUED: _("queued for sending again"),
        FOUND: _("had already reached Twilio, not sent again"),
        UNAVAILABLE: _("not resent: Twilio could not be asked"),
        SKIPPED: _("not resent: not failed"),
    },
    run=sms_resend_outcome,
    in_request_limit=20,
    items=pgettext_lazy("rows of a bulk action", "SMS messages"),
)


def register() -> None:
    bulk_action_kind_register(SMS_RESEND)
