"""Minimal, read-mostly registrations; the finance back office is built on these (issue 4).
Financial rows are read-only here: changes go through the services."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin
from core.exceptions import DomainError
from invoices.forms_admin import InvoiceIssueForm
from invoices.models import (
    Customer,
    Invoice,
    InvoiceApplication,
    InvoiceProfile,
    LedgerEntry,
    NumberSequence,
    RedLetterInvoice,
    Statement,
    TaxOutcomeCorrection,
    TaxSandboxOperation,
)
from invoices.rules import invoice_application_can_be_issued
from invoices.services import invoice_issue
from invoices.workdays import business_tz, promised_issue_date


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "taxpayer_id", "mobile", "language"]
    search_fields = ["name", "taxpayer_id", "mobile", "user__username"]
    list_select_related = ["user"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = ["customer", "period", "amount", "settled_at"]
    list_select_related = ["customer"]


@admin.register(InvoiceApplication)
class InvoiceApplicationAdmin(ReadOnlyAdmin):
    """Applications to issue, oldest first, with the promised issue date."""

    list_display = [
        "id",
        "customer",
        "invoice_type",
        "title",
        "amount",
        "state",
        "created_at",
        "promised_date",
        "issue_link",
    ]
    list_filter = ["state", "invoice_type"]
    list_select_related = ["customer"]
    search_fields = ["customer__name", "title"]
    ordering = ["created_at", "id"]

    @admin.display(description=_("promised issue date"))
    def promised_date(self, obj: InvoiceApplication):
        return promised_issue_date(obj.created_at.astimezone(business_tz()).date())

    @admin.display(description=_("issue"))
    def issue_link(self, obj: InvoiceApplication) -> str:
        if not invoice_application_can_be_issued(obj):
            return ""
        url = reverse("admin:invoices_invoiceapplication_issue", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Issue invoice"))

    def get_urls(self):
        return [
            path(
                "<int:application_id>/issue/",
                self.admin_site.admin_view(self.issue_view),
                name="invoices_invoiceapplication_issue",
            ),
            *super().get_urls(),
        ]

    def issue_view(self, request: HttpRequest, application_id: int) -> HttpResponse:
        """Issue the paper invoice (code + number) and mark it mailed: it becomes returnable."""
        if not request.user.has_perm("invoices.add_invoice"):
            raise PermissionDenied
        application = get_object_or_404(
            InvoiceApplication.objects.select_related("customer"), pk=application_id
        )
        form = InvoiceIssueForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            code, number = form.cleaned_data["code_and_number"]
            try:
                invoice = invoice_issue(
                    application_id=application.pk,
                    code=code,
                    number=number,
                    courier=form.cleaned_data["courier"],
                    tracking_number=form.cleaned_data["tracking_number"],
                )
            except DomainError as exc:
                form.add_error("code_and_number", str(exc))
            else:
                self.log_addition(request, invoice, [{"added": {}}])
                self.message_user(
                    request,
                    gettext("Invoice %(invoice)s issued and mailed for application #%(id)s.")
                    % {"invoice": invoice, "id": application.pk},
                    messages.SUCCESS,
                )
                return redirect(
                    reverse("admin:invoices_invoiceapplication_changelist")
                    + "?state__exact=pending"
                )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Issue the invoice for application #%(id)s") % {"id": application.pk},
            "application": application,
            "promised_date": self.promised_date(application),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/invoices/invoiceapplication/issue.html", context)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = [
        "code",
        "number",
        "customer",
        "invoice_type",
        "amount",
        "tax_rate",
        "tax",
        "total",
        "issuer",
        "state",
    ]
    list_filter = ["state", "invoice_type", "issuer"]
    search_fields = ["code", "number", "customer__name"]
    list_select_related = ["customer"]


@admin.register(RedLetterInvoice)
class RedLetterInvoiceAdmin(ReadOnlyAdmin):
    list_display = [
        "code",
        "number",
        "original",
        "amount",
        "tax",
        "total",
        "red_letter_form_number",
        "issued_on",
    ]
    list_select_related = ["original"]


@admin.register(TaxOutcomeCorrection)
class TaxOutcomeCorrectionAdmin(ReadOnlyAdmin):
    """The audit trail of corrected tax-system outcomes: who, when, why, before and after."""

    list_display = ["created_at", "tax_request", "before", "after", "reason", "corrected_by"]
    list_select_related = ["tax_request__invoice", "corrected_by"]
    search_fields = ["tax_request__serial", "reason"]


@admin.register(TaxSandboxOperation)
class TaxSandboxOperationAdmin(ReadOnlyAdmin):
    """What the sandbox tax platform has on its side (development and tests only)."""

    list_display = ["serial", "attempts", "ready_at", "created_at"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "customer", "kind", "amount", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["customer"]


@admin.register(NumberSequence)
class NumberSequenceAdmin(ReadOnlyAdmin):
    """Counters behind the sandbox tax platform's numbers: visible for support, never edited."""

    list_display = ["name", "last_value"]


@admin.register(InvoiceProfile)
class InvoiceProfileAdmin(ReadOnlyAdmin):
    """Customers' saved invoice details: staff may look, only the customer changes them."""

    list_display = ["customer", "name", "invoice_type", "title", "taxpayer_id"]
    search_fields = ["customer__name", "title", "taxpayer_id"]
    list_select_related = ["customer"]
