"""The back office's sidebar is kept rendered in the "template_fragments" cache, one per set of
applications, links, current page and language (``core.templatetags.admin_layout``; issue 16,
P5): whatever was kept, each page's sidebar is the one Django would render for that page."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import translation

from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF
from tests.factories import issue_invoice, staff_in_role
from tests.returns_helpers import submit

pytestmark = pytest.mark.django_db

SIDEBAR = re.compile(r'<nav class="sticky" id="nav-sidebar".*?</nav>', re.S)
RETURNS = "/admin/returns/returnrequest/"
AUDIT = "/admin/audit/auditentry/"
# Every staff user may see this page, and it has the sidebar (the index has none).
PASSWORD = "/admin/password_change/"


@pytest.fixture(autouse=True)
def _empty_fragments():
    caches["template_fragments"].clear()
    yield
    caches["template_fragments"].clear()


def sidebar(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    found = SIDEBAR.findall(response.content.decode())
    assert len(found) == 1, url
    return found[0]


def djangos_sidebar(user, url: str, language: str) -> str:
    """Django's own sidebar for ``user`` on ``url``: its app list rendered now, nothing kept."""
    from django.contrib import admin

    request = RequestFactory().get(url)
    request.user = user
    with translation.override(language):
        apps = admin.site.get_app_list(request)
        html = render_to_string(
            "admin/app_list.html",
            {"app_list": apps, "show_changelinks": False, "request": request},
        )
    return html


def current_models(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)" aria-current="page">', html)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_p5_each_page_gets_the_sidebar_django_renders_for_it_whatever_was_kept(
    client, admin_user, customer, language
):
    client.force_login(admin_user)
    client.cookies["django_language"] = language
    one_return = submit(issue_invoice(customer))
    for url in (
        RETURNS,
        AUDIT,
        RETURNS,
        PASSWORD,
        f"{RETURNS}?q=1234",
        f"{RETURNS}{one_return.pk}/change/",
    ):
        html = sidebar(client, url)
        assert djangos_sidebar(admin_user, url, language).strip() in html, url
    # Kept: the returns list's sidebar, rendered once, came back for its second visit.
    assert current_models(sidebar(client, RETURNS)) == [RETURNS]
    assert current_models(sidebar(client, f"{RETURNS}{one_return.pk}/change/")) == [RETURNS]
    assert current_models(sidebar(client, AUDIT)) == [AUDIT]
    assert current_models(sidebar(client, PASSWORD)) == []


def test_p5_a_user_with_other_permissions_never_gets_anothers_kept_sidebar(client, admin_user):
    finance = staff_in_role(FINANCE_STAFF, username="fin")
    reviewer = staff_in_role(ADMIN_REVIEWERS, username="rev")
    sidebars = {}
    for user in (admin_user, finance, reviewer, admin_user):
        client.force_login(user)
        sidebars[user.username] = html = sidebar(client, PASSWORD)
        assert djangos_sidebar(user, PASSWORD, "en").strip() in html, user.username
    # The three differ: what each may see is in each one's own.
    assert len(set(sidebars.values())) == 3
    assert "/admin/auth/user/" in sidebars[admin_user.username]
    assert "/admin/auth/user/" not in sidebars["fin"]


def test_p5_the_sidebar_follows_the_language_and_a_change_of_permissions(client):
    # A staff user in no role sees only their own background work (core.admin.BulkActionAdmin).
    user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(user)
    before = sidebar(client, PASSWORD)
    assert "Background work" in before
    assert RETURNS not in before
    client.cookies["django_language"] = "zh-hans"
    chinese = sidebar(client, PASSWORD)
    assert "后台任务" in chinese
    assert "Background work" not in chinese
    client.cookies["django_language"] = "en"
    user.groups.set(staff_in_role(FINANCE_STAFF, username="fin").groups.all())
    after = sidebar(client, PASSWORD)
    assert RETURNS in after
    assert djangos_sidebar(user, PASSWORD, "en").strip() in after
