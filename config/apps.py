from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SiteConfig(AppConfig):
    """The project itself: site-wide signal receivers (config.signals)."""

    name = "config"
    verbose_name = "Site"

    def ready(self) -> None:
        from django.utils.autoreload import file_changed

        from config import signals  # noqa: F401 (connects the receivers)

        # runserver reloads a changed template without restarting: the layout's fragments
        # rendered from the old one go with it (settings.CACHES, "template_fragments").
        file_changed.connect(_forget_template_fragments, dispatch_uid="forget_template_fragments")


def _forget_template_fragments(sender, file_path, **kwargs) -> None:
    if file_path.suffix == ".html":
        from django.core.cache import caches

        caches["template_fragments"].clear()


class AxesConfig(AxesAppConfig):
    """django-axes under a name the back office shows in the staff's language (the package
    ships no Chinese catalog: ``config/third_party_strings.py`` carries its words)."""

    verbose_name = _("Log-in protection")
