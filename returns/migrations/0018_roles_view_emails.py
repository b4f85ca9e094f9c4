"""Finance staff see the emails sent to customers (and why one failed) beside the SMS they
already see. The role table is frozen as 0011's plus this permission (see 0002_roles);
reversing goes back to 0011's table."""

import importlib

from django.db import migrations

_0006 = importlib.import_module("returns.migrations.0006_roles_tax_queue")
_0011 = importlib.import_module("returns.migrations.0011_roles_audit_log")
EMAILS = ("notifications", "view_emailnotification")
ROLES = {**_0011.ROLES, "Finance staff": [*_0011.ROLES["Finance staff"], EMAILS]}


def sync_roles(apps, schema_editor):
    _0006.create_permissions_now(apps)
    _0006._sync(apps, ROLES)


def unsync_roles(apps, schema_editor):
    _0006._sync(apps, _0011.ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("returns", "0017_event_return_index_once"),
        ("notifications", "0007_sms_template_params_and_email_notifications"),
    ]

    operations = [migrations.RunPython(sync_roles, unsync_roles)]
