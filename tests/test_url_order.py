"""The customer portal's URLs are tried first (issue 16, P1: its requests no longer go through
four other apps' patterns, each refusal an exception). First must not mean shadowing: every
other app's paths still reach that app's views, and the portal's only its own."""

import pytest
from django.urls import resolve

from config import urls as root

OTHER_APPS = [
    ("/healthz", "config.views"),
    ("/accounts/login/", "django.contrib.auth.views"),
    ("/accounts/logout/", "django.contrib.auth.views"),
    ("/i18n/setlang/", "django.views.i18n"),
    ("/admin/", "django.contrib.admin.sites"),
    ("/admin/returns/returnrequest/", "django.contrib.admin.options"),
    ("/admin/login/", "django.contrib.admin.sites"),
    ("/notifications/twilio/status/", "notifications.views"),
]


def test_p1_the_portal_is_tried_first():
    assert str(root.urlpatterns[0].pattern) == ""
    assert root.urlpatterns[0].urlconf_name.__name__ == "returns.urls"


@pytest.mark.parametrize(("path", "module"), OTHER_APPS)
def test_p1_the_portal_shadows_no_other_apps_path(path, module):
    view = resolve(path).func
    assert getattr(view, "__module__", "").startswith(module), (path, view)


@pytest.mark.parametrize(
    "path", ["/", "/billing/invoices/", "/billing/invoices/7/refund/", "/billing/returns/7/"]
)
def test_p1_the_portal_keeps_its_own_paths(path):
    assert resolve(path).func.__module__ == "returns.views"
