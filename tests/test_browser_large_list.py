"""A back-office list past its paginator's limit, in a real browser: it says "More than", its
action bar offers no "Select all" across rows nobody counted, and an action reaches exactly
the rows ticked on the page (Django's actions.js, with the across-pages parts absent). All of
a long list counted to its end is acted on in the background."""

import re
from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import call_command
from playwright.sync_api import expect

from core.admin import LargeListPaginator
from returns.bulk import RETURNS_REJECT
from returns.models import ReturnRequest, ReturnState
from returns.roles import FINANCE_STAFF
from tests.browser_fixtures import log_in, screenshot
from tests.factories import CustomerFactory, issue_invoice, staff_in_role
from tests.returns_helpers import submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_p5_a_list_past_its_limit_acts_on_the_rows_ticked_and_offers_no_select_all(
    page, monkeypatch
):
    # The limit and the page, shrunk: 5 returns, counted up to 3, 2 a page.
    monkeypatch.setattr(LargeListPaginator, "exact_limit", 3)
    monkeypatch.setattr(admin.site._registry[ReturnRequest], "list_per_page", 2)
    customer = CustomerFactory()
    returns = [submit(issue_invoice(customer)) for _ in range(5)]
    staff_in_role(FINANCE_STAFF, username="wang.fin")
    log_in(page, "wang.fin", "pw-for-tests-1")

    page.goto("/admin/returns/returnrequest/")
    expect(page.locator("p.paginator")).to_contain_text(
        "More than 3 return requests: the first 3 are listed."
    )
    page.locator("#action-toggle").check()
    expect(page.locator(".action-counter")).to_have_text("2 of 2 selected")
    expect(page.get_by_text(re.compile("Select all"))).to_have_count(0)
    screenshot(page, "backoffice-large-list-selected")

    page.locator("select[name=action]").select_option("reject")
    page.get_by_label("Reason (for rejecting)").fill("Paper never arrived")
    with page.expect_navigation():
        page.get_by_role("button", name="Go").click()
    expect(page.get_by_text("2 returns rejected.")).to_be_visible()

    newest_two = {rr.pk for rr in returns[-2:]}  # the list is newest first
    states = dict(ReturnRequest.objects.values_list("pk", "state"))
    assert {pk for pk, state in states.items() if state == ReturnState.REJECTED} == newest_two
    assert sum(state == ReturnState.SUBMITTED for state in states.values()) == 3


def test_rejecting_all_of_a_long_list_goes_on_in_the_background_and_the_clerk_follows_it(page):
    """All of a filtered list of more returns than a request takes on: the message says the
    rejection goes on in the background and links to it; the link shows it finished (no broker
    in tests: its task ran when the request committed, as a worker runs it after)."""
    call_command("seed_bench", customers=2, invoices=200, stdout=StringIO())
    call_command("seed_bench_returns", returns=330, stdout=StringIO())
    submitted = ReturnRequest.objects.filter(state=ReturnState.SUBMITTED)
    count = submitted.count()
    assert count > RETURNS_REJECT.in_request_limit
    staff_in_role(FINANCE_STAFF, username="li.fin")
    log_in(page, "li.fin", "pw-for-tests-1")

    page.goto(f"/admin/returns/returnrequest/?state__exact={ReturnState.SUBMITTED}")
    page.locator("#action-toggle").check()
    page.get_by_role("button", name=f"Select all {count} return requests").click()
    page.locator("select[name=action]").select_option("reject")
    page.get_by_label("Reason (for rejecting)").fill("Paper never arrived")
    # Tests run tasks eagerly: the background action runs to its end inside this POST (a few
    # seconds here, more than the default 10 s on a loaded CI machine).
    with page.expect_navigation(timeout=60_000):
        page.get_by_role("button", name="Go").click(timeout=60_000)
    expect(page.locator("ul.messagelist")).to_contain_text(
        f"Reject with the reason given: {count} returns are being done in the background"
    )
    page.get_by_role("link", name="Follow its progress").click()
    expect(page.locator(".field-progress")).to_contain_text(f"{count} of {count}, finished")
    expect(page.locator(".field-summary")).to_contain_text(f"rejected: {count}")
    screenshot(page, "backoffice-bulk-action")
    assert not submitted.exists()
