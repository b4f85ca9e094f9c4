"""The login form in a real browser (Playwright + Debian Chromium)."""

import pytest
from playwright.sync_api import expect

from tests.browser_fixtures import log_in, screenshot
from tests.factories import CustomerFactory, issue_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_customer_logs_in_and_lands_on_invoice_management(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    log_in(page, "li.lei", "pw-for-tests-1")
    page.wait_for_url("**/billing/invoices/")
    # expect() waits for the condition; a bare is_visible() would race the page load.
    expect(page.get_by_role("heading", name="Invoice Management")).to_be_visible()
    expect(page.get_by_role("cell", name=f"{invoice.code} {invoice.number}")).to_be_visible()
    screenshot(page, "invoice-management-after-login")


def test_a_wrong_password_says_so_and_keeps_the_username(page):
    CustomerFactory(user__username="li.lei")
    log_in(page, "li.lei", "wrong-password")
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    expect(page.get_by_label("Username")).to_have_value("li.lei")
