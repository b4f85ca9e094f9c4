from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app shares; its one table is the task outbox (core.models)."""

    name = "core"
    verbose_name = "Core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core import timestamps  # noqa: F401 (connects its receiver)
