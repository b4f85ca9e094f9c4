"""The layout's parts that depend only on the language and the page are kept per process in the
"template_fragments" cache (local memory; issue 16, P2): each language, page, filter and user
still gets its own page, the per-request parts (CSRF tokens, return path, user's name, messages)
are never shared, and no page needs Redis for it."""

import re

import pytest
from django.conf import settings
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import caches
from django.test import RequestFactory

from tests.factories import CustomerFactory, issue_invoice

pytestmark = pytest.mark.django_db


def switch_language(client, language: str) -> None:
    response = client.post("/i18n/setlang/", {"language": language, "next": "/billing/invoices/"})
    assert response.status_code == 302


def csrf_tokens(html: str) -> list[str]:
    return re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)


def test_the_fragments_are_kept_in_local_memory_never_in_redis():
    for alias in ("default", "template_fragments"):
        assert settings.CACHES[alias]["BACKEND"].endswith("LocMemCache")


def test_each_language_page_and_filter_gets_its_own_layout(client, customer):
    issue_invoice(customer)
    client.force_login(customer.user)
    caches["template_fragments"].clear()

    english = client.get("/billing/invoices/").content.decode()
    switch_language(client, "zh-hans")
    chinese = client.get("/billing/invoices/").content.decode()
    apply_page = client.get("/billing/invoices/apply/").content.decode()
    voided = client.get("/billing/invoices/", {"status": "voided"}).content.decode()
    switch_language(client, "en")
    english_again = client.get("/billing/invoices/").content.decode()

    assert "Skip to main content" in english
    assert "Log out" in english
    assert "Invoice request record" in english
    assert 'data-label="Applied at"' in english
    assert "Skip to main content" not in chinese
    assert "Invoice request record" not in chinese
    assert 'data-label="Applied at"' not in chinese
    assert '<html lang="zh-hans">' in chinese
    # The language switch marks the current language; the sidebar the current page.
    assert re.search(r'value="zh-hans"[^>]*class="link current"', chinese)
    assert re.search(r'value="en"[^>]*class="link current"', english_again)
    assert re.search(r'href="/billing/invoices/" aria-current="page"', chinese)
    assert not re.search(r'href="/billing/invoices/" aria-current="page"', apply_page)
    assert re.search(r'href="/billing/invoices/apply/" aria-current="page"', apply_page)
    # The filter shows the status chosen.
    assert re.search(r'<option value="voided" selected>', voided)
    assert not re.search(r'<option value="voided" selected>', chinese)
    assert re.search(r'<option value="" selected>', english_again)
    # The language switch returns to the page it was sent from.
    assert 'name="next" value="/billing/invoices/?status=voided"' in voided
    assert english_again == english.replace(csrf_tokens(english)[0], csrf_tokens(english_again)[0])


def test_the_users_name_and_tokens_are_each_requests_own(client, customer):
    other = CustomerFactory(user__username="someone-else")
    client.force_login(customer.user)
    first = client.get("/billing/invoices/").content.decode()
    client.force_login(other.user)
    second = client.get("/billing/invoices/").content.decode()

    assert f'<span class="user">{customer.user.username}</span>' in first
    assert '<span class="user">someone-else</span>' in second
    assert customer.user.username not in second
    assert len(csrf_tokens(first)) == len(csrf_tokens(second)) == 2
    assert set(csrf_tokens(first)).isdisjoint(csrf_tokens(second))


def test_a_message_shows_once_inside_the_cached_layout(client, customer):
    client.force_login(customer.user)
    client.get("/billing/invoices/")  # the layout's fragments are cached
    storage = CookieStorage(RequestFactory().get("/"))
    client.cookies[storage.cookie_name] = storage._encode([Message(constants.SUCCESS, "Done.")])

    shown = client.get("/billing/invoices/").content.decode()
    after = client.get("/billing/invoices/").content.decode()

    assert '<ul class="messages"><li class="success">Done.</li></ul>' in shown
    assert "Done." not in after


def test_a_changed_template_empties_the_fragments_in_development():
    from pathlib import Path

    from django.utils.autoreload import file_changed

    fragments = caches["template_fragments"]
    fragments.set("some-fragment", "<p>old</p>")
    file_changed.send(sender=None, file_path=Path("templates/base.py"))
    assert fragments.get("some-fragment") == "<p>old</p>"
    file_changed.send(sender=None, file_path=Path("templates/base.html"))
    assert fragments.get("some-fragment") is None
