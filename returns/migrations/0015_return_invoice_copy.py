"""A return's copy of its invoice's code and number (issue 16, P5): the returns list's search
by invoice number filters and sorts the returns alone. Existing returns are filled in from
their invoices; in PostgreSQL a foreign key on (invoice, code, number) then refuses a copy that
is not its invoice's, and carries a corrected code or number over to the returns."""

from django.db import migrations, models
from django.db.models import Q

RETURNS = "returns_returnrequest"
INVOICES = "invoices_invoice"


def backfill(apps, schema_editor):
    ReturnRequest = apps.get_model("returns", "ReturnRequest")
    Invoice = apps.get_model("invoices", "Invoice")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"UPDATE {RETURNS} AS r SET invoice_code = i.code, invoice_number = i.number "  # noqa: S608
            f"FROM {INVOICES} AS i WHERE i.id = r.invoice_id"
        )
        return
    of_invoice = Invoice.objects.filter(pk=models.OuterRef("invoice_id"))
    ReturnRequest.objects.update(
        invoice_code=models.Subquery(of_invoice.values("code")[:1]),
        invoice_number=models.Subquery(of_invoice.values("number")[:1]),
    )


def foreign_key_add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE {RETURNS} ADD CONSTRAINT return_invoice_copy_fk "
        "FOREIGN KEY (invoice_id, invoice_code, invoice_number) "
        f"REFERENCES {INVOICES} (id, code, number) ON UPDATE CASCADE"
    )


def foreign_key_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE {RETURNS} DROP CONSTRAINT return_invoice_copy_fk")


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0014_invoice_id_code_number_unique"),
        ("returns", "0014_returns_list_order_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="returnrequest",
            name="invoice_code",
            field=models.CharField(
                blank=True, editable=False, max_length=12, verbose_name="invoice code"
            ),
        ),
        migrations.AddField(
            model_name="returnrequest",
            name="invoice_number",
            field=models.CharField(
                default="", editable=False, max_length=20, verbose_name="invoice number"
            ),
            preserve_default=False,
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(foreign_key_add, foreign_key_drop),
        migrations.AddIndex(
            model_name="returnrequest",
            index=models.Index(
                fields=["invoice_number"],
                include=["id"],
                name="return_invoice_number_idx",
                opclasses=["varchar_pattern_ops"],
            ),
        ),
        migrations.AddIndex(
            model_name="returnrequest",
            index=models.Index(
                condition=~Q(invoice_code=""),
                fields=["invoice_code"],
                include=["id"],
                name="return_invoice_code_idx",
            ),
        ),
    ]
