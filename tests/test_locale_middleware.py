"""The language middleware: Django's LocaleMiddleware without its look-up of a language prefix
in the path when no URL has one (config.middleware.LocaleMiddleware, issue 16)."""

import pytest
from django.conf.urls.i18n import i18n_patterns
from django.http import HttpResponse, HttpResponseNotFound
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.test import RequestFactory
from django.urls import path
from django.utils import translation

from config.middleware import LocaleMiddleware
from tests.factories import UserFactory


def _view(request):
    return HttpResponse(translation.get_language())


# A URL configuration with language prefixes, for the case this project does not have.
urlpatterns = i18n_patterns(path("page/", _view))

REQUESTS = [
    ("/billing/invoices/", {}),
    ("/billing/invoices/", {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"}),
    ("/billing/invoices/", {"HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9"}),
    ("/billing/invoices/", {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}),
    ("/billing/invoices/", {"HTTP_COOKIE": "django_language=zh-hans"}),
    (
        "/billing/invoices/",
        {"HTTP_COOKIE": "django_language=en", "HTTP_ACCEPT_LANGUAGE": "zh-hans"},
    ),
    ("/billing/invoices/", {"HTTP_COOKIE": "django_language=xx"}),
    # Paths whose first segment looks like a language: no URL has a prefix, so it is no choice.
    ("/zh-hans/billing/invoices/", {}),
    ("/en/", {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}),
    ("/", {}),
]


def _through(middleware_class, url, headers, *, status=200, urlconf=None):
    """What the middleware makes of a request: the language the view ran in, the language
    left on the request, the response's status and headers."""
    request = RequestFactory().get(url, **headers)
    if urlconf:
        request.urlconf = urlconf

    def view(request):
        response = HttpResponse(translation.get_language())
        if status == 404:
            response = HttpResponseNotFound(translation.get_language())
        return response

    with translation.override(None):
        response = middleware_class(view)(request)
    return response.status_code, response.content, request.LANGUAGE_CODE, dict(response.headers)


@pytest.mark.parametrize(("url", "headers"), REQUESTS)
@pytest.mark.parametrize("status", [200, 404])
def test_the_language_is_chosen_as_djangos_middleware_chooses_it(url, headers, status):
    assert _through(LocaleMiddleware, url, headers, status=status) == _through(
        DjangoLocaleMiddleware, url, headers, status=status
    )


@pytest.mark.parametrize(
    ("url", "headers"),
    [("/page/", {}), ("/zh-hans/page/", {}), ("/en/page/", {"HTTP_ACCEPT_LANGUAGE": "zh-hans"})],
)
@pytest.mark.parametrize("status", [200, 404])
def test_with_language_prefixes_it_is_djangos_middleware(url, headers, status):
    ours = _through(LocaleMiddleware, url, headers, status=status, urlconf=__name__)
    assert ours == _through(DjangoLocaleMiddleware, url, headers, status=status, urlconf=__name__)


def test_a_prefix_is_not_looked_up_when_no_url_has_one(monkeypatch):
    def looked_up(path):
        raise AssertionError(f"the path's language looked up: {path}")

    monkeypatch.setattr(translation, "get_language_from_path", looked_up)
    status, content, language, headers = _through(
        LocaleMiddleware, "/billing/invoices/", {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    )
    assert (status, content, language) == (200, b"zh-hans", "zh-hans")
    assert headers["Content-Language"] == "zh-hans"
    assert headers["Vary"] == "Accept-Language"


def test_the_settings_name_the_language_middleware():
    from django.conf import settings

    assert "config.middleware.LocaleMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.locale.LocaleMiddleware" not in settings.MIDDLEWARE


@pytest.mark.django_db
def test_the_language_switch_cookie_and_browser_choose_the_portals_language(client):
    client.force_login(UserFactory())
    english = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert english["Content-Language"] == "en"
    chinese = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    assert chinese["Content-Language"] == "zh-hans"
    assert '<html lang="zh-hans">' in chinese.content.decode()
    switched = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/accounts/login/"})
    assert switched.status_code == 302
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert page["Content-Language"] == "zh-hans"
    client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})
    assert (
        client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-hans")["Content-Language"] == "en"
    )
