"""Re-sync the role groups so that existing databases get the tax-system queue: finance staff
may view and record tax-system requests, admin reviewers may view them and correct a recorded
outcome.

The role tables are frozen here as they were when this migration was written (see 0002_roles):
a fresh database never asks for a permission a later migration creates. Reversing goes back to
0002's table."""

import importlib

from django.db import migrations

from returns.roles import role_groups_sync

_VIEW_RETURNS = [
    ("returns", "view_returnrequest"),
    ("returns", "view_returnevent"),
    ("returns", "view_mailreceipt"),
    ("returns", "view_redletterform"),
    ("invoices", "view_invoice"),
    ("invoices", "view_customer"),
    ("invoices", "view_taxrequest"),
]
ROLES = {
    "Finance staff": [
        *_VIEW_RETURNS,
        ("invoices", "view_invoiceapplication"),
        ("invoices", "view_statement"),
        ("invoices", "view_redletterinvoice"),
        ("invoices", "view_ledgerentry"),
        ("invoices", "add_invoice"),
        ("invoices", "record_taxrequest"),
        ("invoices", "view_taxoutcomecorrection"),
        ("returns", "log_mailreceipt"),
        ("returns", "reject_returnrequest"),
        ("returns", "retry_returnrequest"),
        ("notifications", "view_smsmessage"),
        ("notifications", "resend_smsmessage"),
    ],
    "Admin reviewers": [
        *_VIEW_RETURNS,
        ("invoices", "view_redletterinvoice"),
        ("invoices", "view_taxoutcomecorrection"),
        ("invoices", "correct_taxrequest"),
        ("returns", "review_redletterform"),
    ],
}


def create_permissions_now(apps) -> None:
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None


def _sync(apps, roles) -> None:
    role_groups_sync(
        group_model=apps.get_model("auth", "Group"),
        permission_model=apps.get_model("auth", "Permission"),
        roles=roles,
    )


def sync_roles(apps, schema_editor):
    create_permissions_now(apps)
    _sync(apps, ROLES)


def unsync_roles(apps, schema_editor):
    _sync(apps, importlib.import_module("returns.migrations.0002_roles").ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("returns", "0005_awaiting_tax_system"),
        ("invoices", "0008_tax_outcome_corrections"),
        ("notifications", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(sync_roles, unsync_roles)]
