from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from config.views import healthz

admin.site.site_header = _("Billing Center back office")
admin.site.site_title = _("Billing Center back office")
admin.site.index_title = _("Invoice returns")

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("notifications/", include("notifications.urls")),
    path("", include("returns.urls")),
]
