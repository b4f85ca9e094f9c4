"""The tax-system boundary: invoices print amount, tax rate, tax and total; red-letter invoices
carry the tax system's numbers and date; requests to the tax system are rows of their own.

``amount`` used to hold what the customer applied for, tax included: it is renamed ``total``
(价税合计) and the amount before tax and the tax are computed with the one rounding rule of
``invoices/tax.py``. Red-letter rows are append-only (a PostgreSQL trigger): the trigger is
switched off for this migration's own back-fill only.
"""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

RATE = Decimal("0.060")
CENT = Decimal("0.01")
SHANGHAI = ZoneInfo("Asia/Shanghai")
RED = "invoices_redletterinvoice"


def _split(total):
    amount = (total / (Decimal(1) + RATE)).quantize(CENT, rounding=ROUND_HALF_UP)
    return amount, total - amount


def backfill(apps, schema_editor):
    Invoice = apps.get_model("invoices", "Invoice")
    RedLetterInvoice = apps.get_model("invoices", "RedLetterInvoice")
    postgres = schema_editor.connection.vendor == "postgresql"
    for invoice in Invoice.objects.all().iterator():
        invoice.amount, invoice.tax = _split(invoice.total)
        invoice.tax_rate = RATE
        invoice.save(update_fields=["amount", "tax", "tax_rate"])
    if postgres:
        schema_editor.execute(f"ALTER TABLE {RED} DISABLE TRIGGER {RED}_append_only")
    for red in RedLetterInvoice.objects.select_related("original").iterator():
        red.amount, red.tax = -red.original.amount, -red.original.tax
        red.tax_rate = red.original.tax_rate
        red.issued_on = red.issued_at.astimezone(SHANGHAI).date()
        red.recorded_at = red.issued_at
        red.save(update_fields=["amount", "tax", "tax_rate", "issued_on", "recorded_at"])
    if postgres:
        schema_editor.execute(f"ALTER TABLE {RED} ENABLE TRIGGER {RED}_append_only")


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0004_verbose_names"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="invoice", name="invoice_amount_positive"),
        migrations.RemoveConstraint(model_name="redletterinvoice", name="red_letter_amount_negative"),
        migrations.RenameField(model_name="invoice", old_name="amount", new_name="total"),
        migrations.RenameField(model_name="redletterinvoice", old_name="amount", new_name="total"),
        migrations.AlterField(
            model_name="invoice",
            name="total",
            field=models.DecimalField(decimal_places=2, max_digits=14, verbose_name="total"),
        ),
        migrations.AlterField(
            model_name="redletterinvoice",
            name="total",
            field=models.DecimalField(decimal_places=2, max_digits=14, verbose_name="total"),
        ),
        migrations.AddField(
            model_name="invoice",
            name="amount",
            field=models.DecimalField(
                decimal_places=2, max_digits=14, null=True, verbose_name="amount before tax"
            ),
        ),
        migrations.AddField(
            model_name="invoice",
            name="tax",
            field=models.DecimalField(decimal_places=2, max_digits=14, null=True, verbose_name="tax"),
        ),
        migrations.AddField(
            model_name="invoice",
            name="tax_rate",
            field=models.DecimalField(
                decimal_places=3, default=RATE, max_digits=4, verbose_name="tax rate"
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="redletterinvoice",
            name="amount",
            field=models.DecimalField(
                decimal_places=2, max_digits=14, null=True, verbose_name="amount before tax"
            ),
        ),
        migrations.AddField(
            model_name="redletterinvoice",
            name="tax",
            field=models.DecimalField(decimal_places=2, max_digits=14, null=True, verbose_name="tax"),
        ),
        migrations.AddField(
            model_name="redletterinvoice",
            name="tax_rate",
            field=models.DecimalField(
                decimal_places=3, default=RATE, max_digits=4, verbose_name="tax rate"
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="redletterinvoice",
            name="issued_on",
            field=models.DateField(null=True, verbose_name="issue date"),
        ),
        migrations.AddField(
            model_name="redletterinvoice",
            name="recorded_at",
            field=models.DateTimeField(null=True, verbose_name="recorded at"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="invoice",
            name="amount",
            field=models.DecimalField(
                decimal_places=2, max_digits=14, verbose_name="amount before tax"
            ),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="tax",
            field=models.DecimalField(decimal_places=2, max_digits=14, verbose_name="tax"),
        ),
        migrations.AlterField(
            model_name="redletterinvoice",
            name="amount",
            field=models.DecimalField(
                decimal_places=2, max_digits=14, verbose_name="amount before tax"
            ),
        ),
        migrations.AlterField(
            model_name="redletterinvoice",
            name="tax",
            field=models.DecimalField(decimal_places=2, max_digits=14, verbose_name="tax"),
        ),
        migrations.AlterField(
            model_name="redletterinvoice",
            name="issued_on",
            field=models.DateField(verbose_name="issue date"),
        ),
        migrations.AlterField(
            model_name="redletterinvoice",
            name="recorded_at",
            field=models.DateTimeField(auto_now_add=True, verbose_name="recorded at"),
        ),
        migrations.RemoveField(model_name="redletterinvoice", name="issued_at"),
    ]
