"""Finance staff unlock a locked-out log-in (django-axes) with the back office's "Unlock"
action: they may view access attempts and change them (never delete). The role table is frozen
as 0006's plus these two permissions (see 0002_roles); reversing goes back to 0006's table."""

import importlib

from django.db import migrations

_0006 = importlib.import_module("returns.migrations.0006_roles_tax_queue")
UNLOCK = [("axes", "view_accessattempt"), ("axes", "change_accessattempt")]
ROLES = {**_0006.ROLES, "Finance staff": [*_0006.ROLES["Finance staff"], *UNLOCK]}


def sync_roles(apps, schema_editor):
    _0006.create_permissions_now(apps)
    _0006._sync(apps, ROLES)


def unsync_roles(apps, schema_editor):
    _0006._sync(apps, _0006.ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("returns", "0006_roles_tax_queue"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(sync_roles, unsync_roles)]
