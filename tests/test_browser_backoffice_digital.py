"""A booked digital invoice's reversal in a real browser, manual tax-system backend: finance
records the red-letter confirmation form it entered, the return awaits the buyer, then finance
records the buyer's confirmation and the red-letter invoice the platform issued."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from invoices.models import InvoiceType, LedgerEntry, LedgerKind, RedLetterInvoice
from invoices.workdays import business_tz
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnState
from returns.roles import FINANCE_STAFF
from tests.browser_fixtures import log_in, screenshot
from tests.factories import CustomerFactory, issue_digital_invoice, staff_in_role
from tests.returns_helpers import submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"
FORM = "44030026110000123456"
RED_NUMBER = "26330000009999999901"


def test_finance_walks_a_booked_digital_invoice_from_its_confirmation_form_to_completed(
    page, settings
):
    settings.TAX_SYSTEM_BACKEND = "manual"  # the live server runs in this process: it sees it
    customer = CustomerFactory(name="杭州示例贸易有限公司")
    invoice = issue_digital_invoice(customer, invoice_type=InvoiceType.SPECIAL, amount="1000.00")
    return_request = submit(invoice, buyer_booked=True)  # committed: processed at once
    return_request.refresh_from_db()
    assert return_request.state == ReturnState.AWAITING_TAX
    serial = return_request.tax_request.serial
    staff_in_role(FINANCE_STAFF, username="wang.fin")

    log_in(page, "wang.fin", PASSWORD)
    page.goto("/admin/")
    page.get_by_role("link", name="To do in the tax system").click()
    task = page.get_by_role("row").filter(has_text=serial)
    expect(task).to_contain_text(invoice.number)
    expect(task).to_contain_text("Digital invoice (VAT special invoice)")
    expect(task).to_contain_text(
        "Enter the red-letter confirmation form; the buyer must confirm it within 72 hours."
    )
    screenshot(page, "backoffice-digital-queue")

    task.get_by_role("link", name="Record the confirmation form").click()
    page.get_by_label("Red-letter confirmation form number").fill(FORM)
    screenshot(page, "backoffice-digital-confirmation-form")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"Red-letter confirmation form {FORM} recorded")).to_be_visible()
    return_request.refresh_from_db()
    assert return_request.state == ReturnState.AWAITING_BUYER

    page.goto("/admin/invoices/taxrequest/?state__exact=awaiting_buyer")
    task = page.get_by_role("row").filter(has_text=serial)
    expect(task).to_contain_text(FORM)
    expect(task).to_contain_text("(Beijing time)")
    expect(task).to_contain_text("left")
    screenshot(page, "backoffice-digital-awaiting-buyer")

    task.get_by_role("link", name="Record outcome").click()
    expect(page.get_by_label("Not confirmed within 72 hours: the form lapsed")).to_have_count(0)
    page.get_by_label("Confirmed: the platform issued the red-letter invoice").check()
    page.get_by_label("Red-letter invoice number").fill(RED_NUMBER)
    page.get_by_label("Issue date").fill(timezone.localdate(timezone=business_tz()).isoformat())
    expect(page.get_by_label("Total")).to_have_value("-1000.00")
    screenshot(page, "backoffice-digital-buyer-decision")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text(f"Return #{return_request.pk} completed")).to_be_visible()
    return_request.refresh_from_db()
    assert (return_request.state, return_request.outcome) == (ReturnState.COMPLETED, "reversed")
    red = RedLetterInvoice.objects.get(original=invoice)
    assert (red.code, red.number, red.red_letter_form_number) == ("", RED_NUMBER, FORM)
    credits = LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED)
    assert credits.count() == 1
    completed = SmsMessage.objects.filter(
        related_return_id=return_request.pk, purpose=SmsPurpose.RETURN_COMPLETED
    )
    assert completed.count() == 1
