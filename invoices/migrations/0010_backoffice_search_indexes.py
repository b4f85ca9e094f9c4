"""Indexes for the back-office search: taxpayer ID, mobile number and invoice number, exact
or by their beginning; and, in PostgreSQL only, a trigram index on the customer's name so that
a part of a company name ("云启") is found without scanning the table. SQLite (local
development) has no pg_trgm: there the name search scans, which a development database can
afford. The trigram index is on UPPER(name), the expression Django's ``icontains`` compares in
PostgreSQL; it is not in the model state, since it exists in PostgreSQL only."""

from django.conf import settings
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

TRIGRAM_INDEX = "customer_name_trgm_idx"


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON invoices_customer "
        "USING gin (UPPER(name) gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('invoices', '0009_digital_invoices'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        TrigramExtension(),  # does nothing outside PostgreSQL
        migrations.RunPython(create_trigram_index, drop_trigram_index),
        migrations.AddIndex(
            model_name='customer',
            index=models.Index(fields=['taxpayer_id'], name='customer_taxpayer_id_idx', opclasses=['varchar_pattern_ops']),
        ),
        migrations.AddIndex(
            model_name='customer',
            index=models.Index(fields=['mobile'], name='customer_mobile_idx', opclasses=['varchar_pattern_ops']),
        ),
        migrations.AddIndex(
            model_name='invoice',
            index=models.Index(fields=['number'], name='invoice_number_idx', opclasses=['varchar_pattern_ops']),
        ),
    ]
