"""The manual tax-system backend in a real browser: finance works the queue "To do in the tax
system" and records the red-letter invoice the tax system printed; the return completes."""

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from invoices.models import InvoiceType, LedgerEntry, LedgerKind, RedLetterInvoice
from invoices.workdays import business_tz
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnState
from returns.roles import FINANCE_STAFF
from tests.browser_fixtures import log_in, screenshot
from tests.factories import CustomerFactory, issue_invoice, staff_in_role
from tests.returns_helpers import log_paper, submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"


def test_r6_r7_r8_finance_records_a_red_letter_invoice_from_the_queue_and_the_return_completes(
    page, settings
):
    from django.utils import timezone

    settings.TAX_SYSTEM_BACKEND = "manual"  # the live server runs in this process: it sees it
    customer = CustomerFactory(name="杭州示例贸易有限公司")
    # Issued in an earlier month: it cannot be voided any more, so it is a red-letter case.
    invoice = issue_invoice(
        customer, amount="1000.00", issued_at=timezone.now() - dt.timedelta(days=45)
    )
    return_request = submit(invoice)
    finance = staff_in_role(FINANCE_STAFF, username="wang.fin")
    log_paper(invoice, finance)  # committed at once here: processing runs, eagerly
    return_request.refresh_from_db()
    assert return_request.state == ReturnState.AWAITING_TAX
    # Two more tasks behind it: a void, and a special invoice whose form the seller files.
    to_void = issue_invoice(customer, amount="250.00")
    seller_files = issue_invoice(
        CustomerFactory(name="上海云数据科技有限公司"),
        invoice_type=InvoiceType.SPECIAL,
        amount="5300.00",
        issued_at=timezone.now() - dt.timedelta(days=40),
    )
    for other, extra in ((to_void, {}), (seller_files, {"certified": False})):
        submit(other, **extra)
        log_paper(other, finance)
    serial = return_request.tax_request.serial
    credits = LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED)
    completed_sms = SmsMessage.objects.filter(
        related_return_id=return_request.pk, purpose=SmsPurpose.RETURN_COMPLETED
    )
    assert (credits.count(), completed_sms.count()) == (0, 0)

    log_in(page, "wang.fin", PASSWORD)
    page.goto("/admin/")
    page.get_by_role("link", name="To do in the tax system").click()
    expect(page.get_by_role("heading", name="To do in the tax system")).to_be_visible()
    task = page.get_by_role("row").filter(has_text=serial)
    expect(task).to_contain_text(f"{invoice.code} {invoice.number}")
    expect(task).to_contain_text("杭州示例贸易有限公司")
    for figure in ("943.40", "6%", "56.60", "1000.00"):  # amount, tax rate, tax, total
        expect(task).to_contain_text(figure)
    expect(task).to_contain_text("Red-letter invoice")
    expect(page.get_by_role("link", name="Record outcome")).to_have_count(3)
    expect(
        page.get_by_role("row").filter(has_text=f"{to_void.code} {to_void.number}")
    ).to_contain_text("Not needed for a void")
    expect(
        page.get_by_role("row").filter(has_text=f"{seller_files.code} {seller_files.number}")
    ).to_contain_text("The seller files it first.")
    screenshot(page, "backoffice-tax-queue")

    task.get_by_role("link", name="Record outcome").click()
    expect(page.get_by_label("Total")).to_have_value("-1000.00")
    page.get_by_label("Red-letter invoice code").fill("3300201130")
    page.get_by_label("Red-letter invoice number").fill("90000017")
    issued_on = timezone.localdate(timezone=business_tz())
    page.get_by_label("Issue date").fill(issued_on.isoformat())
    screenshot(page, "backoffice-tax-record-filled")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text(f"Return #{return_request.pk} completed")).to_be_visible()
    expect(page.get_by_text("red-letter invoice 3300201130 90000017")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=serial)).to_have_count(0)  # done
    expect(page.get_by_role("link", name="Record outcome")).to_have_count(2)  # still to do
    screenshot(page, "backoffice-tax-recorded")
    return_request.refresh_from_db()
    assert (return_request.state, return_request.outcome) == (ReturnState.COMPLETED, "reversed")
    red = RedLetterInvoice.objects.get(original=invoice)
    assert (red.code, red.number, red.issued_on, red.total) == (
        "3300201130",
        "90000017",
        issued_on,
        Decimal("-1000.00"),
    )
    assert [credit.amount for credit in credits] == [Decimal("1000.00")]
    [sms] = completed_sms
    assert "90000017" in sms.body
