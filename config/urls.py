from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import URLPattern, URLResolver, include, path
from django.utils.translation import gettext_lazy as _

from config.views import healthz

# Error pages in the portal's layout and the visitor's language, with a way back.
handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"

admin.site.site_header = _("Billing Center back office")
admin.site.site_title = _("Billing Center back office")
admin.site.index_title = _("Invoice returns")

# Password reset mails a link: without an email server (EMAIL_URL) its pages are not routed.
_account_urls: list[URLPattern | URLResolver] = [
    url
    for url in auth_urls.urlpatterns
    if settings.PASSWORD_RESET_ENABLED
    or not str(getattr(url, "name", "")).startswith("password_reset")
]

# The customer portal first: Django tries the patterns in order, and the portal's pages are
# most of the requests (none of its paths starts like another app's).
urlpatterns = [
    path("", include("returns.urls")),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include(_account_urls)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("notifications/", include("notifications.urls")),
]
