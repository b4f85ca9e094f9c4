"""The finance back office for returns: the returns queue, mail receipts, red-letter forms and
the queue "To do in the tax system" (``TaxRequest`` is registered here, not in ``invoices``,
because recording its outcome completes the return and ``invoices`` never imports ``returns``).

Nothing here decides anything: actions and pages call the services and show their domain
errors as admin messages. Nobody deletes a return, a receipt or a form.
"""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, ReadOnlyInline
from core.exceptions import DomainError
from invoices.models import TaxRequest, TaxRequestState
from invoices.rules import (
    tax_request_outcome_can_be_corrected,
    tax_request_outcome_can_be_recorded,
)
from invoices.tax import rate_as_printed
from returns import admin_views
from returns.models import MailReceipt, RedLetterForm, ReturnEvent, ReturnRequest
from returns.services import return_request_reject, return_request_retry


class ReturnEventInline(ReadOnlyInline):
    model = ReturnEvent
    readonly_fields = ("created_at", "actor", "from_state", "to_state", "note")
    fields = readonly_fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("Timeline")

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


def _return_id(tax_request: TaxRequest) -> int | None:
    """The return waiting on this request, annotated by ``TaxRequestAdmin.get_queryset``."""
    return_id: int | None = getattr(tax_request, "return_id", None)
    return return_id


@admin.register(TaxRequest)
class TaxRequestAdmin(ReadOnlyAdmin):
    """The queue "To do in the tax system" (manual backend): oldest first, each row holding
    everything finance needs to act in the tax system; pending rows link "Record outcome".
    Facts share a cell where they belong together, so that a row fits a laptop's screen."""

    list_display = [
        "requested",
        "to_do",
        "original_invoice",
        "buyer",
        "figures",
        "red_letter_form",
        "state",
    ]
    list_display_links = None
    list_filter = ["state", "operation"]
    search_fields = [
        "serial",
        "invoice__number",
        "invoice__title",
        "invoice__customer__name",
        "invoice__customer__taxpayer_id",
    ]
    list_select_related = ["invoice__customer"]
    ordering = ["created_at", "id"]
    list_per_page = 50

    def get_queryset(self, request):
        returns = ReturnRequest.objects.filter(tax_request=OuterRef("pk")).order_by("-id")
        return (
            super()
            .get_queryset(request)
            .select_related("invoice__customer", "invoice__application", "recorded_by")
            .annotate(return_id=Subquery(returns.values("pk")[:1]))
        )

    def get_list_display(self, request):
        columns = list(self.list_display)
        if "state__exact" in request.GET:
            columns.remove("state")  # one state: the title says it
        can_record = request.user.has_perm("invoices.record_taxrequest")
        can_correct = request.user.has_perm("invoices.correct_taxrequest")
        if can_record or can_correct:
            columns.append(self._action_column(can_record=can_record, can_correct=can_correct))
        return columns

    def changelist_view(self, request, extra_context=None):
        context: dict[str, object] = {"is_nav_sidebar_enabled": False}  # the queue needs width
        if request.GET.get("state__exact") == TaxRequestState.PENDING:
            context["title"] = gettext("To do in the tax system")
        return super().changelist_view(request, {**context, **(extra_context or {})})

    @admin.display(description=_("request"), ordering="created_at")
    def requested(self, obj: TaxRequest) -> str:
        facts = admin_views.tax_request_facts(obj)
        return_id = _return_id(obj)
        if return_id is None:
            return_link = ""
        else:
            return_link = format_html(
                '<br><a href="{}">{}</a>',
                reverse("admin:returns_returnrequest_change", args=[return_id]),
                gettext("Return #%(id)s") % {"id": return_id},
            )
        return format_html(
            '<a class="nowrap" href="{}">{}</a><br><span class="nowrap">{}</span>'
            '<br><span class="quiet">{}</span>{}',
            reverse("admin:invoices_taxrequest_change", args=[obj.pk]),
            obj.serial,
            facts.requested_at,
            facts.age,
            return_link,
        )

    @admin.display(description=_("to do"), ordering="operation")
    def to_do(self, obj: TaxRequest) -> str:
        return format_html(
            "<strong>{}</strong><br>{}", obj.get_operation_display(), obj.get_reason_code_display()
        )

    @admin.display(description=_("original invoice"), ordering="invoice__issued_at")
    def original_invoice(self, obj: TaxRequest) -> str:
        original = admin_views.tax_request_facts(obj).submission.original
        return format_html(
            '<span class="nowrap">{} {}</span><br>{}<br><span class="nowrap">{}</span>',
            original.code,
            original.number,
            obj.invoice.get_invoice_type_display(),
            gettext("issued on %(date)s") % {"date": original.issued_on.isoformat()},
        )

    @admin.display(description=_("buyer and taxpayer ID"), ordering="invoice__title")
    def buyer(self, obj: TaxRequest) -> str:
        original = admin_views.tax_request_facts(obj).submission.original
        return format_html(
            '{}<br><span class="nowrap">{}</span>',
            original.buyer_name,
            original.buyer_taxpayer_id or "—",
        )

    @admin.display(description=_("amounts"))
    def figures(self, obj: TaxRequest) -> str:
        original = admin_views.tax_request_facts(obj).submission.original
        return format_html(
            '<dl class="figures"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>'
            "<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
            gettext("Amount"),
            original.amount,
            gettext("Tax rate"),
            rate_as_printed(original.tax_rate),
            gettext("Tax"),
            original.tax,
            gettext("Total"),
            original.total,
        )

    @admin.display(description=_("red-letter information form"))
    def red_letter_form(self, obj: TaxRequest) -> str:
        return admin_views.tax_request_facts(obj).form_note

    @staticmethod
    def _action_column(*, can_record: bool, can_correct: bool) -> Callable[[TaxRequest], str]:
        """This user's action on a row: "Record outcome" on a pending request (finance),
        "Correct the outcome" on a recorded one (reviewers)."""

        @admin.display(description=_("record"))
        def record_link(obj: TaxRequest) -> str:
            if can_record and tax_request_outcome_can_be_recorded(obj):
                url = reverse("admin:invoices_taxrequest_record", args=[obj.pk])
                label = gettext("Record outcome")
                return format_html('<a class="button" href="{}">{}</a>', url, label)
            if can_correct and tax_request_outcome_can_be_corrected(obj) and _return_id(obj):
                url = reverse("admin:invoices_taxrequest_correct", args=[obj.pk])
                return format_html('<a href="{}">{}</a>', url, gettext("Correct the outcome"))
            return ""

        return record_link

    def get_urls(self):
        return [
            path(
                "<int:tax_request_id>/record/",
                self.admin_site.admin_view(
                    lambda r, tax_request_id: admin_views.tax_request_record_view(
                        self, r, tax_request_id
                    )
                ),
                name="invoices_taxrequest_record",
            ),
            path(
                "<int:tax_request_id>/correct/",
                self.admin_site.admin_view(
                    lambda r, tax_request_id: admin_views.tax_request_correct_view(
                        self, r, tax_request_id
                    )
                ),
                name="invoices_taxrequest_correct",
            ),
            *super().get_urls(),
        ]
