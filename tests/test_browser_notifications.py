"""The Notifications page (SMS, email or both): keyboard only, in Chinese and English, and
axe-core's serious and critical violations at a phone's width and a laptop's."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from invoices.models import Customer
from tests.browser_fixtures import log_in, screenshot
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"
AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
    "resultTypes": ["violations"],
}


def tab_to(page, target, *, limit: int = 40) -> None:
    for _ in range(limit):
        if target.evaluate("element => element === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(target).to_be_focused()


def blocking_violations(page) -> list[str]:
    page.evaluate(AXE)
    result = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_keyboard_a_customer_chooses_email_in_chinese(page_zh):
    customer = CustomerFactory(user__username="li.lei", user__email="", language="zh-hans")
    page = page_zh
    page.goto("/accounts/login/")
    page.locator("#id_username").fill("li.lei")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]", has_text="登录").click()
    page.wait_for_url("**/billing/invoices/")
    page.get_by_role("link", name="通知设置").click()
    expect(page.get_by_role("heading", name="通知设置")).to_be_visible()
    sms = page.get_by_role("radio", name="短信", exact=True)
    expect(sms).to_be_checked()  # not chosen yet: a mobile is on file, no address
    tab_to(page, sms)
    page.keyboard.press("ArrowDown")  # the next choice, as radio groups do: no reload
    expect(page.get_by_role("radio", name="电子邮箱", exact=True)).to_be_checked()
    expect(page).to_have_url(re.compile(r"/billing/settings/notifications/$"))
    address = page.get_by_role("textbox", name="电子邮箱地址")
    tab_to(page, address)
    page.keyboard.type("caiwu@example.cn")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("通知设置已保存。")
    screenshot(page, "notifications-saved-zh")
    customer.refresh_from_db()
    customer.user.refresh_from_db()
    assert (customer.notify_by, customer.user.email) == ("email", "caiwu@example.cn")


def test_keyboard_email_without_an_address_is_refused_next_to_the_choice(page):
    CustomerFactory(user__username="li.lei", user__email="", language="en")
    log_in(page, "li.lei", PASSWORD)
    page.goto("/billing/settings/notifications/")
    both = page.get_by_role("radio", name="SMS and email")
    tab_to(page, page.get_by_role("radio", name="SMS", exact=True))
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(both).to_be_checked()
    save = page.get_by_role("button", name="Save")
    tab_to(page, save)
    page.keyboard.press("Space")
    expect(page.get_by_text("Give an email address to be told by email.")).to_be_visible()
    assert Customer.objects.get(user__username="li.lei").notify_by == ""


@pytest.mark.parametrize("width", [375, 1280])
def test_the_notifications_page_passes_axe_and_fits(page, width):
    CustomerFactory(user__username="li.lei", language="en")
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, "li.lei", PASSWORD)
    page.goto("/billing/settings/notifications/")
    assert blocking_violations(page) == []
    sideways = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert sideways <= 0
    screenshot(page, f"notifications-{width}")
