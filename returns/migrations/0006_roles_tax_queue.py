"""Re-sync the role groups so that existing databases get the tax-system queue: finance staff
may view and record tax-system requests, admin reviewers may view them and correct a recorded
outcome (returns.roles).

Like 0002_roles it reads the role table from ``returns.roles``, so the groups end up exactly
as that table says. Reversing takes the tax-system permissions away again (finance keeps the red-letter view it had)."""

from django.db import migrations

from returns.roles import ROLES, role_groups_sync

TAX_QUEUE_PERMISSIONS = {
    ("invoices", "view_taxrequest"),
    ("invoices", "record_taxrequest"),
    ("invoices", "correct_taxrequest"),
    ("invoices", "view_taxoutcomecorrection"),
    ("invoices", "view_redletterinvoice"),
}


def _create_permissions(apps) -> None:
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None


def sync_roles(apps, schema_editor):
    _create_permissions(apps)
    role_groups_sync(
        group_model=apps.get_model("auth", "Group"),
        permission_model=apps.get_model("auth", "Permission"),
    )


def unsync_roles(apps, schema_editor):
    role_groups_sync(
        group_model=apps.get_model("auth", "Group"),
        permission_model=apps.get_model("auth", "Permission"),
        roles={
            name: [
                p
                for p in permissions
                if p not in TAX_QUEUE_PERMISSIONS
                or (name == "Finance staff" and p == ("invoices", "view_redletterinvoice"))
            ]
            for name, permissions in ROLES.items()
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("returns", "0005_awaiting_tax_system"),
        ("invoices", "0008_tax_outcome_corrections"),
        ("notifications", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(sync_roles, unsync_roles)]
