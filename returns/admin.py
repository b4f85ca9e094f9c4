"""The finance back office for returns: the returns queue, mail receipts and red-letter forms.

Nothing here decides anything: actions and pages call the services and show their domain
errors as admin messages. Nobody deletes a return, a receipt or a form.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from invoices.admin import ReadOnlyAdmin
from invoices.exceptions import DomainError
from returns import admin_views
from returns.models import MailReceipt, RedLetterForm, ReturnEvent, ReturnRequest
from returns.services import return_request_reject, return_request_retry


class ReturnEventInline(admin.TabularInline):
    model = ReturnEvent
    readonly_fields = ("created_at", "actor", "from_state", "to_state", "note")
    fields = readonly_fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("Timeline")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class ReturnActionForm(helpers.ActionForm):
    """The action bar, plus the reason a rejection needs (the customer sees it)."""

    reason = forms.CharField(label=_("Reason (for rejecting)"), required=False, max_length=500)


@admin.register(ReturnRequest)
class ReturnRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "state",
        "invoice_type",
        "certified",
        "customer",
        "invoice_code_and_number",
        "days_waiting",
        "outcome",
        "created_at",
    ]
    list_filter = ["state", "invoice__invoice_type", "certified", "outcome"]
    search_fields = [
        "invoice__number",
        "invoice__code",
        "invoice__customer__name",
        "invoice__customer__mobile",
    ]
    list_select_related = ["invoice", "invoice__customer"]
    readonly_fields = (
        "invoice",
        "state",
        "problem",
        "reason",
        "certified",
        "courier",
        "tracking_number",
        "mail_receipt",
        "outcome",
        "rejection_reason",
        "error",
        "submitted_by",
        "created_at",
    )
    fields = readonly_fields
    inlines = [ReturnEventInline]
    action_form = ReturnActionForm
    actions = ["reject", "retry"]
    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice__customer", "submitted_by")

    @admin.display(description=_("invoice type"), ordering="invoice__invoice_type")
    def invoice_type(self, obj: ReturnRequest) -> str:
        return obj.invoice.get_invoice_type_display()

    @admin.display(description=_("customer"), ordering="invoice__customer__name")
    def customer(self, obj: ReturnRequest) -> str:
        return obj.invoice.customer.name

    @admin.display(description=_("invoice code and number"), ordering="invoice__number")
    def invoice_code_and_number(self, obj: ReturnRequest) -> str:
        return f"{obj.invoice.code} {obj.invoice.number}"

    @admin.display(description=_("days waiting"), ordering="created_at")
    def days_waiting(self, obj: ReturnRequest) -> int:
        return (timezone.now() - obj.created_at).days

    def has_reject_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("returns.reject_returnrequest")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("returns.retry_returnrequest")

    @admin.action(description=_("Reject with the reason given"), permissions=["reject"])
    def reject(self, request: admin_views.StaffRequest, queryset: QuerySet[ReturnRequest]) -> None:
        reason = request.POST.get("reason", "")
        done = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                return_request_reject(return_request_id=pk, actor=request.user, reason=reason)
            except DomainError as exc:
                self.message_user(
                    request,
                    _("Return #%(id)s: %(error)s") % {"id": pk, "error": exc},
                    messages.ERROR,
                )
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext("%(count)d return rejected.", "%(count)d returns rejected.", done)
                % {"count": done},
                messages.SUCCESS,
            )

    @admin.action(description=_("Retry failed returns"), permissions=["retry"])
    def retry(self, request: admin_views.StaffRequest, queryset: QuerySet[ReturnRequest]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            try:
                return_request_retry(return_request_id=pk, actor=request.user)
            except DomainError as exc:
                self.message_user(
                    request,
                    _("Return #%(id)s: %(error)s") % {"id": pk, "error": exc},
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    _("Return #%(id)s is being processed again.") % {"id": pk},
                    messages.SUCCESS,
                )


@admin.register(MailReceipt)
class MailReceiptAdmin(ReadOnlyAdmin):
    list_display = [
        "invoice",
        "received_at",
        "received_by",
        "courier",
        "tracking_number",
        "invoice_form_present",
        "deduction_form_present",
        "undamaged",
    ]
    list_select_related = ["invoice", "received_by"]
    search_fields = ["invoice__number", "invoice__code", "tracking_number"]
    date_hierarchy = "received_at"

    def get_urls(self):
        return [
            path(
                "log/",
                self.admin_site.admin_view(lambda r: admin_views.mail_receipt_log_view(self, r)),
                name="returns_mailreceipt_log",
            ),
            *super().get_urls(),
        ]


@admin.register(RedLetterForm)
class RedLetterFormAdmin(ReadOnlyAdmin):
    """The review queue: oldest first; each row opens the review page."""

    list_display = [
        "review_link",
        "return_request",
        "customer",
        "invoice_code_and_number",
        "content_type",
        "review_state",
        "created_at",
    ]
    list_display_links = None
    list_filter = ["review_state"]
    list_select_related = ["return_request__invoice__customer"]
    ordering = ["created_at", "id"]

    @admin.display(description=_("form number"), ordering="form_number")
    def review_link(self, obj: RedLetterForm) -> str:
        url = reverse("admin:returns_redletterform_review", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.form_number)

    @admin.display(description=_("customer"))
    def customer(self, obj: RedLetterForm) -> str:
        return obj.return_request.invoice.customer.name

    @admin.display(description=_("invoice code and number"))
    def invoice_code_and_number(self, obj: RedLetterForm) -> str:
        invoice = obj.return_request.invoice
        return f"{invoice.code} {invoice.number}"

    def get_urls(self):
        return [
            path(
                "<int:form_id>/review/",
                self.admin_site.admin_view(
                    lambda r, form_id: admin_views.red_letter_form_review_view(self, r, form_id)
                ),
                name="returns_redletterform_review",
            ),
            path(
                "<int:form_id>/scan/",
                self.admin_site.admin_view(
                    lambda r, form_id: admin_views.red_letter_form_scan_view(self, r, form_id)
                ),
                name="returns_redletterform_scan",
            ),
            *super().get_urls(),
        ]


@admin.register(ReturnEvent)
class ReturnEventAdmin(ReadOnlyAdmin):
    """The whole audit trail (R11), searchable across returns; each return shows its own inline."""

    list_display = ["created_at", "return_request", "from_state", "to_state", "actor", "note"]
    list_filter = ["to_state"]
    search_fields = ["return_request__invoice__number", "note", "actor__username"]
    list_select_related = ["return_request", "actor"]
    date_hierarchy = "created_at"
