"""Minimal registrations of the return workflow; actions call services (issue 4 builds on it)."""

from django.contrib import admin, messages

from invoices.admin import ReadOnlyAdmin
from invoices.exceptions import DomainError
from returns.models import MailReceipt, RedLetterForm, ReturnEvent, ReturnRequest
from returns.services import return_request_retry


class ReturnEventInline(admin.TabularInline):
    model = ReturnEvent
    fields = ["created_at", "actor", "from_state", "to_state", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReturnRequest)
class ReturnRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "invoice", "state", "certified", "outcome", "created_at"]
    list_filter = ["state", "certified", "outcome"]
    search_fields = ["invoice__number", "invoice__customer__name", "invoice__customer__mobile"]
    list_select_related = ["invoice"]
    inlines = [ReturnEventInline]
    actions = ["retry"]

    @admin.action(description="Retry failed returns")
    def retry(self, request, queryset) -> None:
        for rr in queryset:
            try:
                return_request_retry(return_request_id=rr.pk, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"Return #{rr.pk}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Return #{rr.pk} is being processed again.")


@admin.register(MailReceipt)
class MailReceiptAdmin(ReadOnlyAdmin):
    list_display = ["invoice", "received_at", "received_by", "courier", "tracking_number"]
    list_select_related = ["invoice", "received_by"]


@admin.register(RedLetterForm)
class RedLetterFormAdmin(ReadOnlyAdmin):
    list_display = ["return_request", "form_number", "content_type", "review_state", "created_at"]
    list_filter = ["review_state"]
