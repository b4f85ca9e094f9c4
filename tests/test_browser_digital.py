"""Digital invoices (数电票) in a real browser (Playwright + Debian Chromium), issue 10's "Done
when": a never-booked digital ordinary invoice is returned and completes without the buyer; a
booked digital special invoice waits for the buyer, who confirms (the sandbox's testing aid),
and completes; a booked one whose 72 hours pass ends rejected. Each ends with exactly one
ledger credit and one completion SMS, or none. Also: applying for a digital or a paper invoice.

The sandbox tax system answers at once (Celery runs eagerly in tests), as in ``make run``.
"""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from invoices.models import (
    InvoiceApplication,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
    TaxRequest,
    TaxSandboxOperation,
)
from invoices.services import invoice_application_create
from invoices.taxsystem.services import local_minute
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnRequest, ReturnState
from returns.services import returns_repoll_tax
from tests.browser_fixtures import log_in, screenshot
from tests.factories import VALID_USCC, CustomerFactory, fund, special_fields

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"
RETURN_URL = re.compile(r"/billing/returns/\d+/$")


def sandbox_digital_invoice(customer, invoice_type=InvoiceType.ORDINARY):
    """Apply for a digital invoice: outside a test transaction the sandbox issues it as soon as
    the application commits, with its file (as in ``make run``)."""
    fund(customer, "1000.00")
    extra = special_fields() if invoice_type == InvoiceType.SPECIAL else {"taxpayer_id": VALID_USCC}
    application = invoice_application_create(
        customer_id=customer.pk,
        invoice_type=invoice_type,
        medium="digital",
        title=customer.name,
        amount="1000.00",
        mailing_recipient="",
        mailing_phone="",
        mailing_address="",
        **extra,
    )
    application.refresh_from_db()
    return application.invoice


def row(page, invoice):
    return page.get_by_role("row").filter(has_text=invoice.number)


def credits(invoice) -> int:
    return LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED).count()


def completion_sms(invoice) -> int:
    returns = ReturnRequest.objects.filter(invoice=invoice).values("pk")
    return SmsMessage.objects.filter(
        related_return_id__in=returns, purpose=SmsPurpose.RETURN_COMPLETED
    ).count()


def refund_in_the_dialog(page, invoice, *, booked: bool, reason: str) -> None:
    """Refund on the invoice's row; the dialog asks the digital questions, nothing of paper."""
    row(page, invoice).get_by_role("button", name="Refund").click()
    dialog = page.get_by_role("dialog")
    reason_box = dialog.get_by_role("textbox", name="Reason")
    expect(reason_box).to_be_visible()
    expect(dialog.get_by_text("A digital invoice: nothing to mail")).to_be_visible()
    expect(dialog.get_by_text("Invoice Returns Desk")).to_have_count(0)  # no mailing address
    expect(dialog.get_by_text("Has this invoice been certified?")).to_have_count(0)
    expect(dialog.locator("input[type=file]")).to_have_count(0)
    expect(dialog.get_by_label("Red-letter confirmation form number (if the buyer")).to_be_visible()
    reason_box.fill(reason)
    dialog.get_by_role("radio", name="Yes" if booked else "No", exact=True).check()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_visible()
    dialog.get_by_role("button", name="OK").click()
    page.wait_for_url(RETURN_URL)


def test_a_never_booked_digital_ordinary_invoice_is_returned_without_the_buyer(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = sandbox_digital_invoice(customer)
    log_in(page, "li.lei", PASSWORD)
    page.wait_for_url("**/billing/invoices/")
    expect(row(page, invoice)).to_contain_text("Digital invoice (ordinary invoice)")
    expect(row(page, invoice).get_by_role("link", name="Download")).to_be_visible()
    screenshot(page, "digital-01-invoice-management")

    refund_in_the_dialog(page, invoice, booked=False, reason="The title misses our branch")

    expect(page.locator("[data-return-state]")).to_have_text("Completed")
    done = page.locator(".progress li.done .step-label")
    expect(done).to_have_text(["Submitted", "Sent to the tax system", "Completed", "SMS sent"])
    expect(page.get_by_text("Awaiting buyer confirmation")).to_have_count(0)
    outcome = page.locator("[data-outcome]")
    expect(outcome).to_contain_text("Red-letter invoice number")
    expect(outcome).to_contain_text("¥-1,000.00")
    for paper in ("Courier", "Tracking number", "Paper received"):
        expect(page.get_by_text(paper, exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel return")).to_have_count(0)
    screenshot(page, "digital-02-return-completed-without-the-buyer")
    assert ReturnRequest.objects.get(invoice=invoice).state == ReturnState.COMPLETED
    assert (credits(invoice), completion_sms(invoice)) == (1, 1)


def test_a_booked_digital_special_invoice_waits_for_the_buyer_who_confirms_it(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = sandbox_digital_invoice(customer, InvoiceType.SPECIAL)
    page.set_viewport_size({"width": 1280, "height": 1400})
    log_in(page, "li.lei", PASSWORD)
    expect(row(page, invoice)).to_contain_text("Digital invoice (VAT special invoice)")

    refund_in_the_dialog(page, invoice, booked=True, reason="Should have been ordinary")

    rr = ReturnRequest.objects.select_related("tax_request").get(invoice=invoice)
    tax_request = rr.tax_request
    expect(page.locator("[data-return-state]")).to_have_text("Awaiting buyer confirmation")
    buyer = page.locator("[data-buyer]")
    expect(buyer.locator("[data-form-number]")).to_have_text(tax_request.red_letter_form_number)
    expect(buyer.locator("[data-form-number]")).to_have_text(re.compile(r"^\d{20}$"))
    expect(buyer.locator("time")).to_have_text(local_minute(tax_request.confirm_by))
    expect(buyer).to_contain_text("(Beijing time)")
    expect(buyer.locator("[data-time-left]")).to_have_text(
        re.compile(r"^(2\sdays, 23\shours|3\sdays)$")  # Django puts no-break spaces in
    )
    expect(buyer).to_contain_text("红字发票业务 → 红字信息确认单")
    expect(page.locator(".progress li[aria-current=step]")).to_contain_text(
        "Awaiting buyer confirmation"
    )
    sandbox = page.locator("[data-sandbox]")
    expect(sandbox.get_by_role("heading")).to_have_text("Sandbox: act as the buyer (testing aid)")
    screenshot(page, "digital-03-return-awaiting-the-buyer")
    assert (credits(invoice), completion_sms(invoice)) == (0, 0)

    sandbox.get_by_role("button", name="I have confirmed it").click()
    expect(page.get_by_text("Sandbox: the buyer's confirmation was simulated.")).to_be_visible()
    expect(page.locator("[data-return-state]")).to_have_text("Completed")
    expect(page.locator("[data-sandbox]")).to_have_count(0)
    outcome = page.locator("[data-outcome]")
    expect(outcome).to_contain_text(tax_request.red_letter_form_number)
    page.reload()  # the success SMS is sent after commit: the bar says so on the next view
    expect(page.locator(".progress li.done .step-label")).to_have_text(
        ["Submitted", "Sent to the tax system", "Confirmed by the buyer", "Completed", "SMS sent"]
    )
    screenshot(page, "digital-04-return-confirmed-by-the-buyer")
    assert (credits(invoice), completion_sms(invoice)) == (1, 1)


def test_a_booked_digital_invoice_whose_72_hours_pass_ends_rejected_and_may_start_again(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = sandbox_digital_invoice(customer, InvoiceType.SPECIAL)
    log_in(page, "li.lei", PASSWORD)
    refund_in_the_dialog(page, invoice, booked=True, reason="Wrong bank account")
    expect(page.locator("[data-return-state]")).to_have_text("Awaiting buyer confirmation")

    # 72 hours pass on the platform (the sandbox's own record) and in ours; then the sweeper
    # asks the tax system again, as beat does every SWEEP_INTERVAL_SECONDS.
    rr = ReturnRequest.objects.get(invoice=invoice)
    past = timezone.now() - dt.timedelta(minutes=1)
    TaxRequest.objects.filter(pk=rr.tax_request_id).update(confirm_by=past)
    operation = TaxSandboxOperation.objects.get(serial=rr.tax_request.serial)
    operation.result = {**operation.result, "confirm_by": past.isoformat()}
    operation.save(update_fields=["result"])
    assert returns_repoll_tax(older_than=dt.timedelta(0)) == [rr.pk]

    page.reload()
    expect(page.locator("[data-return-state]")).to_have_text("Rejected")
    expect(page.get_by_role("alert")).to_contain_text(
        "was not confirmed within 72 hours and lapsed; the invoice stays valid"
    )
    stopped = page.locator(".progress li.stopped")
    expect(stopped).to_have_count(1)
    expect(stopped).to_contain_text("Buyer's confirmation")
    expect(stopped).to_contain_text("Not confirmed within 72 hours")
    expect(page.locator("[data-buyer]")).to_have_count(0)
    expect(page.locator("[data-sandbox]")).to_have_count(0)
    screenshot(page, "digital-05-return-lapsed")
    assert (credits(invoice), completion_sms(invoice)) == (0, 0)

    page.get_by_role("link", name="Return this invoice again").click()
    page.wait_for_url(f"**/billing/invoices/{invoice.pk}/refund/")
    expect(page.get_by_role("textbox", name="Reason")).to_be_visible()


def test_applying_for_a_digital_invoice_hides_the_mailing_address_and_paper_shows_it(page):
    customer = CustomerFactory(user__username="li.lei")
    fund(customer, "800.00")
    log_in(page, "li.lei", PASSWORD)
    page.goto("/billing/invoices/apply/")
    digital = page.get_by_role("radio", name=re.compile(r"^Digital invoice"))
    expect(digital).to_be_checked()
    mailing = page.get_by_label("Mailing address")
    expect(mailing).to_be_hidden()
    expect(page.get_by_label("Email address (optional)")).to_be_visible()

    page.get_by_role("radio", name=re.compile(r"^Paper invoice")).check()
    expect(mailing).to_be_visible()
    expect(page.get_by_label("Email address (optional)")).to_be_hidden()
    mailing.fill("2 Example Street, Hangzhou")  # typed, then the customer switches back
    digital.check()
    expect(mailing).to_be_hidden()

    page.get_by_label("Amount (yuan)").fill("250.00")
    page.get_by_label("Invoice title").fill("Hangzhou Example Trading Co.")
    page.get_by_label("Taxpayer ID").fill(VALID_USCC)
    page.get_by_label("Email address (optional)").fill("finance@example.com")
    screenshot(page, "digital-06-apply-digital")
    page.get_by_role("button", name="Submit application").click()
    page.wait_for_url("**/billing/invoices/")
    expect(page.get_by_text("¥550.00")).to_be_visible()
    application = InvoiceApplication.objects.get(customer=customer)
    expect(row(page, application.invoice)).to_contain_text("Digital invoice (ordinary invoice)")
    assert (application.medium, application.email, application.mailing_address) == (
        "digital",
        "finance@example.com",
        "",
    )


def test_without_javascript_the_apply_page_shows_both_deliveries_each_titled(browser, live_server):
    customer = CustomerFactory(user__username="li.lei")
    fund(customer, "800.00")
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, "li.lei", PASSWORD)
        page.goto("/billing/invoices/apply/")
        expect(page.get_by_text("Delivery of the digital invoice")).to_be_visible()
        expect(page.get_by_text("Where to mail the invoice (paper invoices only)")).to_be_visible()
        expect(page.get_by_label("Mailing address")).to_be_enabled()
        page.get_by_role("radio", name=re.compile(r"^Paper invoice")).check()
        page.get_by_label("Amount (yuan)").fill("100.00")
        page.get_by_label("Invoice title").fill("Hangzhou Example Trading Co.")
        page.get_by_label("Taxpayer ID").fill(VALID_USCC)
        page.get_by_role("button", name="Submit application").click()  # no address: refused
        expect(page.get_by_label("Recipient", exact=True)).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("Invoice title")).to_have_value("Hangzhou Example Trading Co.")
        screenshot(page, "digital-07-apply-paper-without-javascript")
    finally:
        context.close()
