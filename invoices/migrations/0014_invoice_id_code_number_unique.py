"""The target of a return's copy of its invoice's code and number (returns' migration 0015):
a foreign key refers to a unique key, and (id, code, number) is one since the id is."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("invoices", "0013_customer_notify_by")]

    operations = [
        migrations.AddConstraint(
            model_name="invoice",
            constraint=models.UniqueConstraint(
                fields=("id", "code", "number"), name="invoice_id_code_number_unique"
            ),
        ),
    ]
