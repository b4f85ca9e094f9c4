"""Headers: a CSP without inline script on every page, private caching, Secure cookies."""

import re
import secrets
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import UserFactory
from tests.processes import run_fresh_django
from tests.returns_helpers import png_bytes, submit

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def assert_strict_page(response):
    assert response.status_code == 200
    csp = directives(response)
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), INLINE_SCRIPT.search(html)
    assert not INLINE_HANDLER.search(html), INLINE_HANDLER.search(html)


def assert_private(response):
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"private", "no-store"} <= cache_control


def test_the_login_page_has_the_policy(client):
    assert_strict_page(client.get("/accounts/login/"))


def test_customer_pages_have_the_policy_and_are_private(client, customer, special_invoice):
    from django.core.files.uploadedfile import SimpleUploadedFile

    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=SimpleUploadedFile("scan.png", png_bytes()),
        red_letter_form_number="4403202612000001",
    )
    client.force_login(customer.user)
    for url in (
        "/billing/invoices/",
        reverse("billing:apply"),
        reverse("billing:return_detail", args=[rr.pk]),
    ):
        response = client.get(url)
        assert_strict_page(response)
        assert_private(response)


def test_back_office_pages_have_the_policy_and_are_private(client, special_invoice):
    from django.core.files.uploadedfile import SimpleUploadedFile

    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=SimpleUploadedFile("scan.png", png_bytes()),
        red_letter_form_number="4403202612000001",
    )
    form = rr.red_letter_forms.get()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    for url in (
        "/admin/",
        "/admin/returns/returnrequest/",
        "/admin/returns/mailreceipt/log/",
        reverse("admin:returns_redletterform_review", args=[form.pk]),
        "/admin/axes/accessattempt/",
    ):
        response = client.get(url)
        assert_strict_page(response)
        assert_private(response)
    # The scan the review page embeds may be framed by its own origin only.
    scan = client.get(reverse("admin:returns_redletterform_scan", args=[form.pk]))
    assert scan["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert scan["X-Frame-Options"] == "SAMEORIGIN"


def test_the_language_cookie_is_secure_in_production():
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.LANGUAGE_COOKIE_SECURE, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)"
    )
    result = run_fresh_django(
        script,
        env={
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "billing.example.com",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True"]


# The policy header written once per process (config.middleware.ContentSecurityPolicyMiddleware) --


def _both_middlewares(make_response, *, path="/billing/invoices/", nonce=False):
    """The headers django-csp's own middleware writes and those ours writes, for the same
    request and response, with what each leaves on the request afterwards."""
    from csp.middleware import CSPMiddleware
    from django.test import RequestFactory

    from config.middleware import ContentSecurityPolicyMiddleware

    results = []
    for middleware_class in (CSPMiddleware, ContentSecurityPolicyMiddleware):
        request = RequestFactory().get(path)
        middleware = middleware_class(lambda request: make_response())
        middleware.process_request(request)
        if nonce:
            str(request.csp_nonce)  # a template asked for the nonce
            request._csp_nonce = "fixed-nonce-for-comparing"
        response = middleware.process_response(request, make_response())
        results.append((dict(response.headers), request))
    return results


def _page():
    from django.http import HttpResponse

    return HttpResponse("page")


def _with(**attributes):
    def make():
        response = _page()
        for name, value in attributes.items():
            setattr(response, name, value)
        return response

    return make


def _own_header():
    response = _page()
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


def _not_found():
    from django.http import HttpResponseNotFound

    return HttpResponseNotFound("gone")


@pytest.mark.parametrize(
    "make_response",
    [
        _page,
        _own_header,
        _not_found,
        _with(_csp_exempt=True),
        _with(_csp_exempt_ro=True),
        _with(_csp_update={"img-src": ["https://example.com"]}),
        _with(_csp_replace={"script-src": ["'self'", "https://cdn.example.com"]}),
        _with(_csp_config={"default-src": ["'none'"]}),
        _with(_csp_update_ro={"img-src": ["https://example.com"]}),
    ],
)
def test_the_policy_written_once_is_the_header_django_csp_writes(make_response):
    (theirs, _request), (ours, _our_request) = _both_middlewares(make_response)
    assert ours == theirs
    exempt = getattr(make_response(), "_csp_exempt", False)
    assert ("Content-Security-Policy" in ours) is not exempt


def test_a_nonce_asked_for_by_the_page_is_in_the_header_as_django_csp_writes_it(settings):
    from csp.constants import NONCE

    policy = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {**policy["DIRECTIVES"], "script-src": ["'self'", NONCE]}
    }
    (theirs, _), (ours, _) = _both_middlewares(_page, nonce=True)
    assert ours == theirs
    assert "'nonce-fixed-nonce-for-comparing'" in ours["Content-Security-Policy"]
    (theirs, _), (ours, _) = _both_middlewares(_page)  # no nonce asked: none written
    assert ours == theirs
    assert "nonce" not in ours["Content-Security-Policy"]


def test_a_changed_policy_setting_is_written_as_django_csp_writes_it(settings):
    (before, _), _ = _both_middlewares(_page)
    settings.CONTENT_SECURITY_POLICY = {
        "EXCLUDE_URL_PREFIXES": ["/excluded/"],
        "DIRECTIVES": {"default-src": ["'none'"]},
    }
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
        "DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp-report/"}
    }
    for path in ("/billing/invoices/", "/excluded/page/"):
        (theirs, _), (ours, _) = _both_middlewares(_page, path=path)
        assert ours == theirs
        assert ours != before
    settings.DEBUG = True  # django-csp leaves Django's debug pages alone
    (theirs, _), (ours, _) = _both_middlewares(_not_found)
    assert ours == theirs
    assert "Content-Security-Policy" not in ours


def test_a_nonce_asked_for_after_the_header_is_written_is_refused_as_django_csp_refuses_it():
    from csp.exceptions import CSPNonceError

    for _headers, request in _both_middlewares(_page):
        with pytest.raises(CSPNonceError):
            str(request.csp_nonce)


def test_the_settings_name_the_policy_middleware_that_writes_the_header_once():
    from django.conf import settings

    assert "config.middleware.ContentSecurityPolicyMiddleware" in settings.MIDDLEWARE
    assert "csp.middleware.CSPMiddleware" not in settings.MIDDLEWARE
