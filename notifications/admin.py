"""Back office: SMS messages and emails are read-only; staff may resend failed SMS."""

from collections import Counter

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import ReadOnlyAdmin, bulk_action_rows
from notifications.bulk import FOUND, REQUEUED, SKIPPED, SMS_RESEND, UNAVAILABLE
from notifications.models import EmailNotification, SmsMessage, SmsPendingStatusCallback


@admin.register(SmsMessage)
class SmsMessageAdmin(ReadOnlyAdmin):
    list_display = ["to", "purpose", "status", "attempts", "error_code", "created_at"]
    list_filter = ["status", "purpose"]
    # The idempotency key names the return (e.g. "return:42:return_completed"); the correlation
    # id the request or task that queued it (its log lines carry the same id).
    search_fields = ["to", "provider_id", "idempotency_key", "correlation_id"]
    date_hierarchy = "created_at"
    ordering = ["-id"]  # newest first (LargeListAdmin: the primary key's order)
    actions = ["resend"]

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.resend_smsmessage")

    @admin.action(description=_("Resend"), permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[SmsMessage]) -> None:
        """Resend the failed messages, asking Twilio first whether each already went out;
        the others are left alone. Every outcome is counted and told."""
        results = bulk_action_rows(self, request, queryset, kind=SMS_RESEND)
        if results is None:  # in the background: the message links to its progress
            return
        outcomes = Counter(result.outcome for result in results)
        requeued, found = outcomes[REQUEUED], outcomes[FOUND]
        unavailable, skipped = outcomes[UNAVAILABLE], outcomes[SKIPPED]
        for result in results:
            if result.error:
                self.message_user(request, f"#{result.object_id}: {result.error}", messages.ERROR)
        if requeued:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message queued for sending again.",
                    "%(count)d messages queued for sending again.",
                    requeued,
                )
                % {"count": requeued},
                messages.SUCCESS,
            )
        if found:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message had already reached Twilio: recorded with Twilio's "
                    "status, not sent again.",
                    "%(count)d messages had already reached Twilio: recorded with Twilio's "
                    "status, not sent again.",
                    found,
                )
                % {"count": found},
                messages.SUCCESS,
            )
        if unavailable:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was not resent: we could not ask Twilio whether it "
                    "already went out. Please try again in a few minutes.",
                    "%(count)d messages were not resent: we could not ask Twilio whether they "
                    "already went out. Please try again in a few minutes.",
                    unavailable,
                )
                % {"count": unavailable},
                messages.ERROR,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was not resent: only failed messages can be resent.",
                    "%(count)d messages were not resent: only failed messages can be resent.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )


@admin.register(SmsPendingStatusCallback)
class SmsPendingStatusCallbackAdmin(ReadOnlyAdmin):
    """Status callbacks that came before their SID was saved: applied and removed when it is,
    dropped after ``SMS_PENDING_CALLBACK_KEEP_SECONDS`` if no message ever claims them."""

    list_display = ["provider_id", "status", "error_code", "received_at"]
    list_filter = ["status"]
    search_fields = ["provider_id"]


@admin.register(EmailNotification)
class EmailNotificationAdmin(ReadOnlyAdmin):
    """Emails sent beside (or instead of) SMS, as customers chose; a failed one shows why."""

    list_display = ["to", "purpose", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "purpose"]
    search_fields = ["to", "idempotency_key", "correlation_id"]
    date_hierarchy = "created_at"
    ordering = ["-id"]  # newest first (LargeListAdmin: the primary key's order)
