"""Minimal, read-mostly registrations; the finance back office is built on these (issue 4).
Financial rows are read-only here: changes go through the services."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ExportMixin, LargeListAdmin, ReadOnlyAdmin
from core.audit.actor import Actor
from core.exceptions import DomainError
from core.private_files import private_file_download
from core.search import search_terms
from invoices.exports import (
    INVOICE_COLUMNS,
    LEDGER_COLUMNS,
    invoice_export_rows,
    ledger_export_rows,
)
from invoices.forms_admin import DigitalInvoiceIssueForm, InvoiceIssueForm
from invoices.models import (
    INVOICE_KIND_LABELS,
    Customer,
    Invoice,
    InvoiceApplication,
    InvoiceMedium,
    InvoiceProfile,
    InvoiceType,
    LedgerEntry,
    NumberSequence,
    RedLetterInvoice,
    Statement,
    TaxOutcomeCorrection,
    TaxSandboxOperation,
)
from invoices.rules import invoice_application_can_be_issued
from invoices.selectors import invoice_ids_matching_term
from invoices.services import invoice_issue
from invoices.workdays import business_tz, promised_issue_date


@admin.register(Customer)
class CustomerAdmin(LargeListAdmin):
    list_display = ["name", "kind", "taxpayer_id", "mobile", "language"]
    search_fields = ["name", "taxpayer_id", "mobile", "user__username"]
    list_select_related = ["user"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = ["customer", "period", "amount", "settled_at"]
    list_select_related = ["customer"]


def kind_label(medium: str, invoice_type: str) -> str:
    """The kind as the tax platforms print it: digital or paper, special or ordinary."""
    return str(INVOICE_KIND_LABELS[InvoiceMedium(medium), InvoiceType(invoice_type)])


@admin.register(InvoiceApplication)
class InvoiceApplicationAdmin(ReadOnlyAdmin):
    """Applications to issue, oldest first, with the promised issue date and the kind: a
    digital one is issued on the e-tax platform and recorded with its number and file, a paper
    one is printed and mailed."""

    list_display = [
        "id",
        "customer",
        "kind",
        "title",
        "amount",
        "deliver_to",
        "state",
        "created_at",
        "promised_date",
        "issue_link",
    ]
    list_filter = ["state", "medium", "invoice_type"]
    list_select_related = ["customer"]
    search_fields = ["customer__name", "title", "email"]
    ordering = ["id"]  # oldest first (LargeListAdmin: the primary key's order)

    @admin.display(description=_("kind"), ordering="medium")
    def kind(self, obj: InvoiceApplication) -> str:
        return kind_label(obj.medium, obj.invoice_type)

    @admin.display(description=_("deliver to"))
    def deliver_to(self, obj: InvoiceApplication) -> str:
        """Digital: the email address the file goes to (if any). Paper: the recipient."""
        if obj.medium == InvoiceMedium.DIGITAL:
            return obj.email or gettext("download only (no email)")
        return obj.mailing_recipient

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
        """Record the invoice finance issued in the tax system: it becomes returnable.

        Paper: code + number, and the courier it was mailed with. Digital (数电票): the 20-digit
        number and the file the e-tax platform delivered; nothing is mailed, the customer
        downloads it (and gets it by email when the application gave an address). Whatever
        ``invoice_issue`` refuses is shown on the page, with what was typed kept."""
        if not request.user.has_perm("invoices.add_invoice"):
            raise PermissionDenied
        application = get_object_or_404(
            InvoiceApplication.objects.select_related("customer"), pk=application_id
        )
        digital = application.medium == InvoiceMedium.DIGITAL
        form: InvoiceIssueForm | DigitalInvoiceIssueForm
        if digital:
            form = DigitalInvoiceIssueForm(request.POST or None, request.FILES or None)
        else:
            form = InvoiceIssueForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                invoice = self._issue(application, form, Actor.staff(request.user))
            except DomainError as exc:
                # Nothing saved. A digital entry's refusal may be about the number or the file.
                form.add_error(None if digital else "code_and_number", str(exc))
            else:
                self.log_addition(request, invoice, [{"added": {}}])
                self.message_user(
                    request, self._issued_message(invoice, application), messages.SUCCESS
                )
                return redirect(
                    reverse("admin:invoices_invoiceapplication_changelist")
                    + "?state__exact=pending"
                )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Issue the invoice for application #%(id)s") % {"id": application.pk},
            "application": application,
            "kind": kind_label(application.medium, application.invoice_type),
            "digital": digital,
            "promised_date": self.promised_date(application),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/invoices/invoiceapplication/issue.html", context)

    @staticmethod
    def _issue(
        application: InvoiceApplication,
        form: InvoiceIssueForm | DigitalInvoiceIssueForm,
        actor: Actor,
    ) -> Invoice:
        if isinstance(form, DigitalInvoiceIssueForm):
            document, document_name = form.document_content()
            return invoice_issue(
                application_id=application.pk,
                code="",
                number=form.cleaned_data["number"],
                document=document,
                document_name=document_name,
                actor=actor,
            )
        code, number = form.cleaned_data["code_and_number"]
        return invoice_issue(
            application_id=application.pk,
            code=code,
            number=number,
            courier=form.cleaned_data["courier"],
            tracking_number=form.cleaned_data["tracking_number"],
            actor=actor,
        )

    @staticmethod
    def _issued_message(invoice: Invoice, application: InvoiceApplication) -> str:
        if not invoice.is_digital:
            return gettext("Invoice %(invoice)s issued and mailed for application #%(id)s.") % {
                "invoice": invoice,
                "id": application.pk,
            }
        if application.email:
            return gettext(
                "Digital invoice %(number)s recorded for application #%(id)s: the customer "
                "can download it, and it is emailed to %(email)s."
            ) % {"number": invoice.number, "id": application.pk, "email": application.email}
        return gettext(
            "Digital invoice %(number)s recorded for application #%(id)s: the customer can "
            "download it."
        ) % {"number": invoice.number, "id": application.pk}


@admin.register(Invoice)
class InvoiceAdmin(ExportMixin, ReadOnlyAdmin):
    """Every invoice; a digital one is identified by its 20-digit number alone (no code).
    The filtered list exports to Excel or CSV for the month-end close."""

    list_display = [
        "code_and_number",
        "customer",
        "kind",
        "amount",
        "tax_rate",
        "tax",
        "total",
        "issuer",
        "state",
    ]
    list_filter = ["state", "medium", "invoice_type", "issuer"]
    # Exact or by the beginning (the back office's "Find" page searches every key through
    # its own index; this box is for narrowing the list before an export).
    search_fields = [
        "code__exact",
        "number__startswith",
        "customer__name__icontains",
        "customer__taxpayer_id__startswith",
    ]
    list_select_related = ["customer"]
    date_hierarchy = "issued_at"
    export_columns = INVOICE_COLUMNS
    export_name = "invoices"

    def get_search_results(self, request, queryset, search_term):
        """``search_fields``' keys, each through its own index: every word of the box must
        match an invoice's number or code or its customer (``invoice_ids_matching_term``)."""
        for term in search_terms(search_term):
            queryset = queryset.filter(pk__in=invoice_ids_matching_term(term))
        return queryset, False

    def export_rows(self, queryset):
        return invoice_export_rows(queryset)

    def get_fields(self, request, obj=None):
        # The digital invoice's file through the download below: a private file has no URL,
        # and Django's own display of the field asked it for one (the page answered 500).
        return [
            "document_file" if name == "document" else name
            for name in super().get_fields(request, obj)
            if name != "document_file"
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "document_file"]

    def get_urls(self):
        return [
            path(
                "<int:invoice_id>/document/",
                self.admin_site.admin_view(self.document_view),
                name="invoices_invoice_document",
            ),
            *super().get_urls(),
        ]

    def document_view(self, request: HttpRequest, invoice_id: int) -> HttpResponseBase:
        """A digital invoice's file (PDF or OFD), to staff who may view invoices (R12)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        invoice = get_object_or_404(Invoice.objects.exclude(document=""), pk=invoice_id)
        return private_file_download(
            invoice.document,
            filename=invoice.document_filename,
            content_type=invoice.document_content_type,
        )

    @admin.display(description=_("invoice file"))
    def document_file(self, obj: Invoice) -> str:
        if not obj.document:
            return self.get_empty_value_display()
        url = reverse("admin:invoices_invoice_document", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.document_filename)

    @admin.display(description=_("invoice code and number"), ordering="number")
    def code_and_number(self, obj: Invoice) -> str:
        return str(obj)  # a digital invoice: its number alone

    @admin.display(description=_("kind"), ordering="medium")
    def kind(self, obj: Invoice) -> str:
        return obj.kind_label


@admin.register(RedLetterInvoice)
class RedLetterInvoiceAdmin(ReadOnlyAdmin):
    """Red-letter invoices as the tax system printed them; a digital one has no code and
    carries its 20-digit red-letter confirmation form."""

    list_display = [
        "code_and_number",
        "original",
        "amount",
        "tax",
        "total",
        "red_letter_form_number",
        "issued_on",
    ]
    list_filter = ["medium"]
    list_select_related = ["original"]

    @admin.display(description=_("invoice code and number"), ordering="number")
    def code_and_number(self, obj: RedLetterInvoice) -> str:
        return f"{obj.code} {obj.number}".strip()


@admin.register(TaxOutcomeCorrection)
class TaxOutcomeCorrectionAdmin(ReadOnlyAdmin):
    """The audit trail of corrected tax-system outcomes: who, when, why, before and after."""

    list_display = ["created_at", "tax_request", "before", "after", "reason", "corrected_by"]
    list_select_related = ["tax_request__invoice", "corrected_by"]
    ordering = ["id"]  # oldest first (LargeListAdmin: the primary key's order)
    search_fields = ["tax_request__serial", "reason"]


@admin.register(TaxSandboxOperation)
class TaxSandboxOperationAdmin(ReadOnlyAdmin):
    """What the sandbox tax platform has on its side (development and tests only)."""

    list_display = ["serial", "attempts", "ready_at", "created_at"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ExportMixin, ReadOnlyAdmin):
    """The invoiceable-amount ledger; the export adds each customer's running balance."""

    list_display = ["id", "customer", "kind", "amount", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["customer"]
    search_fields = ["customer__name__icontains", "customer__taxpayer_id__startswith"]
    date_hierarchy = "created_at"
    export_columns = LEDGER_COLUMNS
    export_name = "ledger"

    def export_rows(self, queryset):
        return ledger_export_rows(queryset)


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
