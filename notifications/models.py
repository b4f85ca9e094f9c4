"""Outgoing SMS messages and their delivery state.

One row per message the customer should receive. The row is written in the caller's transaction
and sent after commit by a Celery task; the ``idempotency_key`` makes queuing the same message
twice a no-op, because Twilio itself takes no idempotency key on message creation.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# E.164: a plus, a non-zero country code digit, 7 to 15 digits in all.
E164_REGEX = r"^\+[1-9][0-9]{6,14}$"


class SmsStatus(models.TextChoices):
    """Delivery state. Forward order: queued < sending < sent < delivered.

    ``failed`` is terminal; only a staff resend moves it back to ``queued``.
    """

    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class SmsPurpose(models.TextChoices):
    RETURN_RECEIVED = "return_received", _("Return received")
    RETURN_REJECTED = "return_rejected", _("Return rejected")
    FORM_REJECTED = "form_rejected", _("Red-letter form rejected")
    RETURN_COMPLETED = "return_completed", _("Return completed")
    BUYER_CONFIRMATION = "buyer_confirmation", _("Buyer confirmation needed")
    PAPER_REMINDER = "paper_reminder", _("Paper not yet received")


class SmsMessage(models.Model):
    """One SMS to one customer.

    ``related_return_id`` is a plain id of ``returns.ReturnRequest``, not a foreign key, on
    purpose: ``returns`` depends on ``notifications`` and never the other way round, so this app
    must not import or reference the returns models. The id is indexed so the back office can
    list a return's messages.
    """

    to = models.CharField(_("to"), max_length=16, help_text=_("E.164, e.g. +8613800138000"))
    body = models.TextField(_("body"), help_text=_("As sent, in the customer's language."))
    template = models.CharField(
        _("template"),
        max_length=64,
        blank=True,
        help_text=_("The key of the text in the catalogue (notifications/texts.py)."),
    )
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    purpose = models.CharField(_("purpose"), max_length=32, choices=SmsPurpose.choices)
    language = models.CharField(_("language"), max_length=8, default="zh-hans")
    related_return_id = models.PositiveBigIntegerField(
        _("related return id"), null=True, blank=True, db_index=True
    )
    status = models.CharField(
        _("status"), max_length=16, choices=SmsStatus.choices, default=SmsStatus.QUEUED
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=128, unique=True)
    correlation_id = models.CharField(
        _("correlation id"),
        max_length=64,
        blank=True,
        help_text=_("The request or task that queued it: search the logs for this id."),
    )
    provider_id = models.CharField(
        _("provider id"), max_length=64, blank=True, help_text=_("Twilio message SID")
    )
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    status_checked_at = models.DateTimeField(
        _("status checked at"),
        null=True,
        blank=True,
        help_text=_("When Twilio was last asked for the status of this sent message."),
    )

    class Meta:
        verbose_name = _("SMS message")
        verbose_name_plural = _("SMS messages")
        ordering = ["-created_at"]
        permissions = [("resend_smsmessage", _("Can resend a failed SMS"))]
        constraints = [
            models.CheckConstraint(condition=Q(to__regex=E164_REGEX), name="sms_to_e164"),
            models.CheckConstraint(condition=~Q(body=""), name="sms_body_not_empty"),
            models.UniqueConstraint(
                fields=["provider_id"],
                condition=~Q(provider_id=""),
                name="sms_provider_id_unique_when_set",
            ),
        ]

    def __str__(self) -> str:
        return f"SMS to {self.to} ({self.get_purpose_display()}, {self.get_status_display()})"


class SmsPendingStatusCallback(models.Model):
    """A Twilio status callback for a SID no message carries yet, kept until one does.

    Twilio may call back before our write of its answer commits (or while that write waits
    for a database that is down); dropping the callback would lose a later "failed" and leave
    the message *sent* for good. The callback is applied, by the forward-only rules, when the
    SID is saved on a message (``notifications.services``), then deleted. One row per SID and
    status: a replayed callback is stored once. Rows no message ever claims (another
    application on the same Twilio account) are purged after a while.
    """

    provider_id = models.CharField(_("provider id"), max_length=64, db_index=True)
    status = models.CharField(_("status"), max_length=32)
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("pending SMS status callback")
        verbose_name_plural = _("pending SMS status callbacks")
        constraints = [
            models.UniqueConstraint(
                fields=["provider_id", "status"], name="sms_pending_callback_once_per_status"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id}: {self.status}"


class EmailStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class EmailNotification(models.Model):
    """One email to one customer, beside (or instead of) the SMS for the same event, as the
    customer chose. Written in the caller's transaction, sent after commit by a task; the
    ``idempotency_key`` (the event's, as the SMS's) makes queuing it twice a no-op.
    ``related_return_id`` is a plain id for the same reason as on ``SmsMessage``."""

    to = models.EmailField(_("to"))
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("body"), help_text=_("As sent, in the customer's language."))
    template = models.CharField(_("template"), max_length=64)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    purpose = models.CharField(_("purpose"), max_length=32, choices=SmsPurpose.choices)
    language = models.CharField(_("language"), max_length=8, default="zh-hans")
    related_return_id = models.PositiveBigIntegerField(
        _("related return id"), null=True, blank=True, db_index=True
    )
    status = models.CharField(
        _("status"), max_length=16, choices=EmailStatus.choices, default=EmailStatus.QUEUED
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=128, unique=True)
    correlation_id = models.CharField(_("correlation id"), max_length=64, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    error_message = models.TextField(_("error message"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("email notification")
        verbose_name_plural = _("email notifications")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(body=""), name="email_body_not_empty"),
            models.CheckConstraint(
                condition=(Q(status=EmailStatus.SENT) & Q(sent_at__isnull=False))
                | (~Q(status=EmailStatus.SENT) & Q(sent_at__isnull=True)),
                name="email_sent_at_iff_sent",
            ),
        ]

    def __str__(self) -> str:
        return f"Email to {self.to} ({self.get_purpose_display()}, {self.get_status_display()})"
