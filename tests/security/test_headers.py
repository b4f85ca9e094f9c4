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
