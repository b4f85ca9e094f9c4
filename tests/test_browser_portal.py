"""The customer journey in a real browser (Playwright + Debian Chromium): Refund dialog, return
timeline, cancel, the certified path, double clicks, two tabs, no JavaScript, Chinese, and the
tax system's outcome on the return page."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from invoices.models import InvoiceType
from returns.models import ReturnRequest, ReturnState
from tests.browser_fixtures import log_in, screenshot
from tests.factories import CustomerFactory, UserFactory, issue_invoice, marketplace_invoice
from tests.returns_helpers import log_paper, png_bytes, submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"


def row(page, invoice):
    return page.get_by_role("row").filter(has_text=f"{invoice.code} {invoice.number}")


def open_refund_dialog(page, invoice):
    row(page, invoice).get_by_role("button", name="Refund").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Reason").wait_for()
    return dialog


def test_r1_refund_in_the_dialog_submits_a_return_and_the_row_changes(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    page.set_viewport_size({"width": 1280, "height": 1000})  # the whole dialog in its screenshot
    log_in(page, "li.lei", PASSWORD)
    page.wait_for_url("**/billing/invoices/")
    screenshot(page, "01-invoice-management")

    expect(row(page, invoice)).to_contain_text("Amount ¥943.40 + tax 6% ¥56.60")
    dialog = open_refund_dialog(page, invoice)
    expect(dialog.get_by_text("Invoice Returns Desk")).to_be_visible()
    expect(dialog.get_by_text("Total (tax included)")).to_be_visible()
    expect(dialog.get_by_role("button", name="OK")).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_visible()
    reason_code = dialog.get_by_role("combobox", name="Reason code for the tax system")
    expect(reason_code).to_have_value("issuing_error")
    reason_code.select_option(label="Sales return (销货退回)")
    dialog.get_by_role("radio", name="Invoice title").check()
    dialog.get_by_role("textbox", name="Reason").fill("The title misses our branch name")
    screenshot(page, "02-refund-dialog")
    dialog.get_by_role("button", name="OK").click()

    page.wait_for_url(re.compile(r"/billing/returns/\d+/$"))
    expect(page.get_by_text("has been submitted")).to_be_visible()
    screenshot(page, "03-return-detail-submitted")
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert (rr.state, rr.problem, rr.reason_code) == (
        ReturnState.SUBMITTED,
        "title",
        "sales_return",
    )

    page.goto("/billing/invoices/")
    expect(row(page, invoice).get_by_role("link", name="Return in progress")).to_be_visible()
    expect(row(page, invoice).get_by_role("button", name="Refund")).to_have_count(0)


def test_the_dialogs_cancel_button_closes_it_without_a_return(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    log_in(page, "li.lei", PASSWORD)
    dialog = open_refund_dialog(page, invoice)
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert not ReturnRequest.objects.exists()


def test_r2_a_double_click_on_ok_creates_one_return(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    log_in(page, "li.lei", PASSWORD)
    dialog = open_refund_dialog(page, invoice)
    dialog.get_by_role("textbox", name="Reason").fill("Wrong amount")
    dialog.get_by_role("button", name="OK").dblclick()
    page.wait_for_url(re.compile(r"/billing/returns/\d+/$"))
    assert ReturnRequest.objects.filter(invoice=invoice).count() == 1


def test_r2_two_tabs_create_one_return_and_the_second_shows_the_first(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    log_in(page, "li.lei", PASSWORD)
    second = page.context.new_page()
    for tab in (page, second):
        tab.goto(f"/billing/invoices/{invoice.pk}/refund/")
        tab.get_by_role("textbox", name="Reason").fill("Wrong title")
    page.get_by_role("button", name="OK").click()
    page.wait_for_url(re.compile(r"/billing/returns/\d+/$"))
    second.get_by_role("button", name="OK").click()
    second.wait_for_url(page.url)
    expect(second.get_by_text("already has a return in progress")).to_be_visible()
    screenshot(second, "04-second-tab-sees-the-open-return")
    assert ReturnRequest.objects.filter(invoice=invoice).count() == 1


def test_r4_the_certified_answer_switches_between_mailing_the_paper_and_the_buyers_form(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    log_in(page, "li.lei", PASSWORD)
    page.set_viewport_size({"width": 1280, "height": 1200})
    dialog = open_refund_dialog(page, invoice)
    mailing = dialog.get_by_text("Invoice Returns Desk")
    form_number = dialog.get_by_label("Red-letter information form number")
    expect(mailing).to_be_hidden()  # nothing to send until the question is answered
    expect(form_number).to_be_hidden()

    dialog.get_by_role("radio", name="No", exact=True).check()
    expect(mailing).to_be_visible()
    expect(
        dialog.get_by_text("Return the invoice form and the deduction form, complete")
    ).to_be_visible()
    expect(form_number).to_be_hidden()
    dialog.get_by_role("textbox", name="Reason").fill("Should have been an ordinary invoice")
    screenshot(page, "05a-refund-dialog-not-certified")

    dialog.get_by_role("radio", name="Yes", exact=True).check()
    expect(mailing).to_be_hidden()
    expect(dialog.get_by_role("heading", name="Certified: do not mail the invoice")).to_be_visible()
    expect(form_number).to_be_visible()
    dialog.get_by_label("Red-letter information form (PDF").set_input_files(
        files=[{"name": "form.png", "mimeType": "image/png", "buffer": png_bytes()}]
    )
    form_number.fill("4403 0123 4567 8901")  # as printed, in groups of four
    screenshot(page, "05-refund-dialog-certified")
    dialog.get_by_role("button", name="OK").click()
    page.wait_for_url(re.compile(r"/billing/returns/\d+/$"))
    expect(page.get_by_role("cell", name="4403012345678901")).to_be_visible()
    expect(page.get_by_role("button", name="Replace form")).to_be_visible()
    expect(page.get_by_text("Do not mail the invoice")).to_be_visible()
    expect(page.get_by_role("heading", name="How you sent the paper")).to_have_count(0)
    screenshot(page, "06-return-detail-certified")
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert rr.certified
    assert rr.red_letter_forms.get().form_number == "4403012345678901"


def test_r1_a_cloud_market_row_has_no_refund_button(page):
    customer = CustomerFactory(user__username="li.lei")
    market = marketplace_invoice(customer)
    log_in(page, "li.lei", PASSWORD)
    market_row = row(page, market)
    expect(
        market_row.get_by_text("Issued by Example Market Seller Ltd.: contact the service provider")
    ).to_be_visible()
    expect(market_row.get_by_role("button", name="Refund")).to_have_count(0)
    screenshot(page, "07-cloud-market-row")


def test_r9_the_customer_cancels_a_return_from_its_timeline(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    log_in(page, "li.lei", PASSWORD)
    dialog = open_refund_dialog(page, invoice)
    dialog.get_by_role("textbox", name="Reason").fill("Wrong title")
    dialog.get_by_role("button", name="OK").click()
    page.wait_for_url(re.compile(r"/billing/returns/\d+/$"))
    page.once("dialog", lambda confirm: confirm.accept())
    page.get_by_role("button", name="Cancel return").click()
    expect(page.get_by_text("Your return has been cancelled.")).to_be_visible()
    screenshot(page, "08-return-cancelled")
    assert ReturnRequest.objects.get(invoice=invoice).state == ReturnState.CANCELLED
    page.goto("/billing/invoices/")
    expect(row(page, invoice).get_by_role("button", name="Refund")).to_be_visible()


def test_refund_works_without_javascript(browser, live_server):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, "li.lei", PASSWORD)
        row(page, invoice).get_by_role("button", name="Refund").click()
        # Refund is a button of a GET form: without JavaScript it opens the refund page.
        page.wait_for_url(re.compile(rf"/billing/invoices/{invoice.pk}/refund/\??$"))
        page.get_by_role("button", name="OK").click()  # empty reason: refused, page kept
        expect(page.get_by_text("Please say why you are returning this invoice.")).to_be_visible()
        page.get_by_role("textbox", name="Reason").fill("Wrong title")
        screenshot(page, "09-refund-page-without-javascript")
        page.get_by_role("button", name="OK").click()
        page.wait_for_url(re.compile(r"/billing/returns/\d+/$"))
        assert ReturnRequest.objects.filter(invoice=invoice).count() == 1
    finally:
        context.close()


def test_the_portal_speaks_chinese_to_a_chinese_browser_and_switches_language(page_zh):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    returned = issue_invoice(customer)
    completed = submit(returned)
    log_paper(returned, UserFactory(username="finance", is_staff=True))
    page = page_zh
    page.goto("/accounts/login/")
    page.locator("#id_username").fill("li.lei")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]", has_text="登录").click()
    page.wait_for_url("**/billing/invoices/")
    expect(page.get_by_role("heading", name="发票管理")).to_be_visible()
    expect(row(page, invoice).get_by_role("button", name="退票")).to_be_visible()
    screenshot(page, "10-invoice-management-zh")
    dialog = open_refund_dialog_zh(page, invoice)
    expect(dialog.get_by_role("button", name="确定")).to_be_visible()
    screenshot(page, "11-refund-dialog-zh")
    dialog.get_by_role("button", name="取消").click()
    page.goto(f"/billing/returns/{completed.pk}/")
    expect(page.get_by_text("短信已发送")).to_be_visible()
    screenshot(page, "13-return-detail-completed-zh")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name=f"Return of invoice {returned.number}")).to_be_visible()
    expect(page.get_by_text("SMS sent")).to_be_visible()


def open_refund_dialog_zh(page, invoice):
    row(page, invoice).get_by_role("button", name="退票").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="原因").wait_for()
    return dialog


def test_r10_applying_for_an_invoice_and_saving_a_profile(page):
    from invoices.models import InvoiceApplication
    from tests.factories import VALID_USCC, fund

    customer = CustomerFactory(user__username="li.lei")
    fund(customer, "800.00")
    log_in(page, "li.lei", PASSWORD)
    page.get_by_role("main").get_by_role("link", name="Apply for an invoice").click()
    page.get_by_role("radio", name=re.compile(r"^Paper invoice")).check()  # digital: default
    page.get_by_label("Amount (yuan)").fill("250.00")
    page.get_by_label("Invoice title").fill("Hangzhou Example Trading Co.")
    page.get_by_label("Taxpayer ID").fill(VALID_USCC)
    expect(page.get_by_label("Bank account")).to_be_hidden()
    page.get_by_label("Recipient", exact=True).fill("Li Lei")
    page.get_by_label("Recipient phone").fill("13800138000")
    page.get_by_label("Mailing address").fill("2 Example Street, Hangzhou")
    page.get_by_label("Save these details as a profile").check()
    page.get_by_label("Profile name").fill("Head office")
    screenshot(page, "12-apply-for-an-invoice")
    page.get_by_role("button", name="Submit application").click()
    page.wait_for_url("**/billing/invoices/")
    expect(page.get_by_text("¥550.00")).to_be_visible()
    assert InvoiceApplication.objects.get(customer=customer).amount == 250

    page.goto("/billing/invoices/apply/")
    page.get_by_label("Saved profile").select_option(label="Head office")
    # Choosing changes nothing until "Use profile" is pressed (WCAG 3.2.2).
    expect(page).to_have_url(re.compile(r"/billing/invoices/apply/$"))
    page.get_by_role("button", name="Use profile").click()
    page.wait_for_url("**/billing/invoices/apply/?profile=*")
    expect(page.get_by_label("Mailing address")).to_have_value("2 Example Street, Hangzhou")


def test_r4_without_javascript_the_special_refund_page_says_what_each_answer_sends(
    browser, live_server
):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, "li.lei", PASSWORD)
        page.goto(f"/billing/invoices/{invoice.pk}/refund/")
        expect(
            page.get_by_role("heading", name="Certified: do not mail the invoice")
        ).to_be_visible()
        expect(
            page.get_by_role("heading", name="Not certified: mail the paper invoice back to")
        ).to_be_visible()
        expect(page.get_by_text("Invoice Returns Desk")).to_be_visible()
        expect(page.get_by_label("Red-letter information form number")).to_be_visible()
        screenshot(page, "09b-special-refund-page-without-javascript")
        page.get_by_role("radio", name="No", exact=True).check()
        page.get_by_role("textbox", name="Reason").fill("Wrong bank account")
        page.get_by_role("button", name="OK").click()
        page.wait_for_url(re.compile(r"/billing/returns/\d+/$"))
        rr = ReturnRequest.objects.get(invoice=invoice)
        assert (rr.certified, rr.reason_code) == (False, "issuing_error")
    finally:
        context.close()


def test_r7_a_reversed_return_shows_the_red_letter_invoice_the_tax_system_issued(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(
        customer, invoice_type=InvoiceType.SPECIAL, issued_at=timezone.now() - dt.timedelta(days=40)
    )
    rr = submit(invoice, certified=False)
    log_paper(invoice, UserFactory(username="finance", is_staff=True))  # the sandbox acts at once
    red = ReturnRequest.objects.get(pk=rr.pk).invoice.red_letter_invoice
    log_in(page, "li.lei", PASSWORD)
    page.goto(f"/billing/returns/{rr.pk}/")
    outcome = page.locator("[data-outcome]")
    expect(outcome.get_by_role("heading", name="Outcome in the tax system")).to_be_visible()
    expect(outcome).to_contain_text(f"{red.code} {red.number}")
    expect(outcome).to_contain_text(red.red_letter_form_number)
    expect(outcome).to_contain_text("¥-943.40")
    expect(outcome).to_contain_text("¥-56.60")
    expect(outcome).to_contain_text("¥-1,000.00")
    expect(page.get_by_text("Reversed in the tax system", exact=True)).to_be_visible()
    expect(page.locator(".progress li.done")).to_have_count(4)  # form step: not needed
    screenshot(page, "14-return-detail-reversed")


def test_r6_a_return_awaiting_the_tax_system_says_what_happens_next(page, settings):
    settings.TAX_SYSTEM_BACKEND = "manual"
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    rr = submit(invoice)
    log_paper(invoice, UserFactory(username="finance", is_staff=True))
    assert ReturnRequest.objects.get(pk=rr.pk).state == ReturnState.AWAITING_TAX
    log_in(page, "li.lei", PASSWORD)
    page.goto(f"/billing/returns/{rr.pk}/")
    outcome = page.locator("[data-outcome]")
    expect(outcome.get_by_role("heading", name="Awaiting the tax system")).to_be_visible()
    expect(outcome).to_contain_text("our finance team voids this invoice in the tax system")
    expect(page.locator(".progress li[aria-current=step]")).to_contain_text(
        "Waiting for the tax system"
    )
    screenshot(page, "15-return-detail-awaiting-tax")
