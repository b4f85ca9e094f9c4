"""Minimal, read-mostly registrations; the finance back office is built on these (issue 4).
Financial rows are read-only here: changes go through the services."""

from django.contrib import admin

from invoices.models import (
    Customer,
    Invoice,
    InvoiceApplication,
    LedgerEntry,
    RedLetterInvoice,
    Statement,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
    list_display = ["id", "customer", "invoice_type", "title", "amount", "state", "created_at"]
    list_filter = ["state", "invoice_type"]
    list_select_related = ["customer"]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["code", "number", "customer", "invoice_type", "amount", "issuer", "state"]
    list_filter = ["state", "invoice_type", "issuer"]
    search_fields = ["code", "number", "customer__name"]
    list_select_related = ["customer"]


@admin.register(RedLetterInvoice)
class RedLetterInvoiceAdmin(ReadOnlyAdmin):
    list_display = ["code", "number", "original", "amount", "red_letter_form_number", "issued_at"]
    list_select_related = ["original"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "customer", "kind", "amount", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["customer"]
