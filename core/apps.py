from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """What every app shares; its tables are the task outbox and the back office's actions
    done in the background (core.models)."""

    name = "core"
    verbose_name = _("Background work")  # the admin index's heading of "Bulk actions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core import timestamps  # noqa: F401 (connects its receiver)
