"""Both back-office roles read the audit log (staff see every action). The role table is frozen
as 0007's plus this permission (see 0002_roles); reversing goes back to 0007's table."""

import importlib

from django.db import migrations

_0006 = importlib.import_module("returns.migrations.0006_roles_tax_queue")
_0007 = importlib.import_module("returns.migrations.0007_roles_unlock_log_ins")
AUDIT = ("audit", "view_auditentry")
ROLES = {name: [*codenames, AUDIT] for name, codenames in _0007.ROLES.items()}


def sync_roles(apps, schema_editor):
    _0006.create_permissions_now(apps)
    _0006._sync(apps, ROLES)


def unsync_roles(apps, schema_editor):
    _0006._sync(apps, _0007.ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("returns", "0010_return_event_message_keys"),
        ("audit", "0001_audit_log"),
    ]

    operations = [migrations.RunPython(sync_roles, unsync_roles)]
