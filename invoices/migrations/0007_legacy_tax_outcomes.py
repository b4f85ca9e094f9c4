"""Invoices voided or reversed before the tax-system boundary get the request they never had,
marked as recorded before the boundary (backend ``before-boundary``), so that every returned
credit has a recorded tax outcome (``check_ledger``). Their red-letter rows stay as they were
(append-only): the request points at the invoice, which points at its red-letter invoice."""

from zoneinfo import ZoneInfo

from django.db import migrations

SHANGHAI = ZoneInfo("Asia/Shanghai")


def backfill(apps, schema_editor):
    Invoice = apps.get_model("invoices", "Invoice")
    TaxRequest = apps.get_model("invoices", "TaxRequest")
    done = Invoice.objects.filter(state__in=["voided", "reversed"], tax_requests__isnull=True)
    for invoice in done.iterator():
        at = invoice.state_changed_at or invoice.issued_at
        TaxRequest.objects.create(
            serial=f"LEGACY{invoice.pk:010d}",
            invoice=invoice,
            operation="void" if invoice.state == "voided" else "red_letter",
            reason_code="issuing_error",
            backend="before-boundary",
            state="done",
            voided_on=at.astimezone(SHANGHAI).date() if invoice.state == "voided" else None,
            completed_at=at,
        )


class Migration(migrations.Migration):
    dependencies = [("invoices", "0006_tax_requests")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
