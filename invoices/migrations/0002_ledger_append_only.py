"""Financial rows are never updated or deleted: PostgreSQL refuses it (SQLite, used only for
local development, relies on the services)."""

from django.db import migrations

TABLES = ("invoices_ledgerentry", "invoices_redletterinvoice")

FUNCTION = """
CREATE OR REPLACE FUNCTION invoices_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% on % refused: financial rows are append-only; write a correcting row',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)  # no placeholders: RAISE uses % itself
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION invoices_refuse_change()"
        )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS invoices_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("invoices", "0001_initial")]
    operations = [migrations.RunPython(install, uninstall)]
