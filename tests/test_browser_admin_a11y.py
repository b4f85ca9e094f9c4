"""The back office checked by axe-core as finance staff use it (issue 12: the admin's
breadcrumb links failed link-in-text-block)."""

import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.browser_fixtures import log_in, screenshot
from tests.test_browser_a11y import DEMO_PASSWORD, _log_in_zh, axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The back office's pages finance works in, each with breadcrumbs but the index.
PAGES = {
    "admin-index": "/admin/",
    "admin-returns": "/admin/returns/returnrequest/",
    "admin-return": None,  # the first return's change page, found on the list
    "admin-receipt": "/admin/returns/mailreceipt/log/",
    "admin-tax-queue": "/admin/invoices/taxrequest/",
    "admin-applications": "/admin/invoices/invoiceapplication/",
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_back_office_pages_finance_uses_pass_axe(browser, live_server, language):
    with override_settings(DEBUG=True):
        call_command("demo_data", verbosity=0)
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN" if language == "zh-hans" else "en-US",
        extra_http_headers={"Accept-Language": "zh-CN" if language == "zh-hans" else "en-US"},
    )
    page = context.new_page()
    try:
        (_log_in_zh if language == "zh-hans" else log_in)(page, "demo-finance", DEMO_PASSWORD)
        failures: list[str] = []
        for name, url in PAGES.items():
            if url is None:
                page.goto(PAGES["admin-returns"])
                page.locator("#result_list tbody tr th a").first.click()
                # Wait for the change page: axe started on the list as it unloads finds
                # no document (CI saw it once).
                page.wait_for_url("**/admin/returns/returnrequest/*/change/")
            else:
                page.goto(url)
            failures += [f"{name}: {v}" for v in axe_violations(page)]
            screenshot(page, f"{name}-{language}")
        assert not failures, "\n".join(failures)
    finally:
        context.close()
