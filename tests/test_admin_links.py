"""Every link the back office shows a role opens for that role: each role's staff (and a
superuser), in each language, start at the index with the demo data and follow every
back-office link of every page they reach (its path; the filters and sorts of a list are the
same page). A link to a page the role may not open (a
user account, an invoice application for a reviewer) is a dead end for a clerk; a page that
fails is worse (a digital invoice's page answered 500 for its file)."""

import re
from collections import Counter

import pytest
from django.core.management import call_command
from django.test import override_settings

from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF
from tests.factories import staff_in_role

pytestmark = pytest.mark.django_db

LINK = re.compile(r'href="(/admin/[^"#?]*)')
# Not pages to open: leaving, deleting, and the exports (files, checked in their own tests).
SKIPPED = ("/logout/", "/delete/", "/export.")


def crawl(client) -> tuple[dict[str, int], dict[str, str]]:
    """Each back-office page reached from the index: its status, and the page linking it."""
    statuses: dict[str, int] = {}
    found_on: dict[str, str] = {"/admin/": ""}
    todo = ["/admin/"]
    while todo:
        url = todo.pop()
        response = client.get(url)
        statuses[url] = response.status_code
        if response.status_code != 200 or "text/html" not in response["Content-Type"]:
            continue
        for link in LINK.findall(response.content.decode()):
            if link not in found_on and not any(part in link for part in SKIPPED):
                found_on[link] = url
                todo.append(link)
    return statuses, found_on


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("role", [FINANCE_STAFF, ADMIN_REVIEWERS, "superuser"])
def test_every_back_office_link_a_role_is_shown_opens_for_it(client, admin_user, role, language):
    with override_settings(DEBUG=True):
        call_command("demo_data", verbosity=0)
    client.raise_request_exception = False  # a failing page is counted, not raised
    client.force_login(admin_user if role == "superuser" else staff_in_role(role, username="s"))
    client.cookies["django_language"] = language

    statuses, found_on = crawl(client)

    dead = {url: f"{status} (linked on {found_on[url]})" for url, status in statuses.items()}
    dead = {url: why for url, why in dead.items() if statuses[url] not in (200, 302)}
    assert not dead, dead
    # Each role reached its returns, invoices and customers, and a page of each.
    counts = Counter(url.split("/")[3] for url in statuses if url.count("/") >= 5)
    assert {"returnrequest", "invoice", "customer"} <= set(counts), counts
    assert len(statuses) > 50


def test_a_read_only_foreign_key_links_for_staff_who_may_open_it_and_is_text_for_others(
    client, admin_user, customer, invoice
):
    from tests.returns_helpers import submit

    rr = submit(invoice)
    page = f"/admin/returns/returnrequest/{rr.pk}/change/"
    user_page = f'href="/admin/auth/user/{customer.user.pk}/change/"'

    client.force_login(admin_user)
    assert user_page in client.get(page).content.decode()  # the timeline's actor, the submitter

    client.force_login(staff_in_role(FINANCE_STAFF, username="fin"))
    html = client.get(page).content.decode()
    assert user_page not in html
    # The same two, by name: the submitter, and the timeline's actor.
    assert f'<div class="readonly">{customer.user}</div>' in html
    assert re.search(rf'class="field-actor_as_text">\s*<p>{customer.user}</p>', html)
