from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SiteConfig(AppConfig):
    """The project itself: site-wide signal receivers (config.signals)."""

    name = "config"
    verbose_name = "Site"

    def ready(self) -> None:
        from config import signals  # noqa: F401 (connects the receivers)


class AxesConfig(AxesAppConfig):
    """django-axes under a name the back office shows in the staff's language (the package
    ships no Chinese catalog: ``config/third_party_strings.py`` carries its words)."""

    verbose_name = _("Log-in protection")
