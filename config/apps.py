from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The project itself: site-wide signal receivers (config.signals)."""

    name = "config"
    verbose_name = "Site"

    def ready(self) -> None:
        from config import signals  # noqa: F401 (connects the receivers)
