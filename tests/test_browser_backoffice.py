"""The back office in a real browser: finance logs a scanned envelope from the keyboard alone."""

import pytest
from playwright.sync_api import expect

from returns.models import ReturnState
from returns.roles import FINANCE_STAFF
from tests.browser_fixtures import log_in, screenshot
from tests.factories import CustomerFactory, issue_invoice, staff_in_role
from tests.returns_helpers import submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_r4_finance_logs_a_scanned_receipt_by_keyboard_and_the_return_completes(page):
    invoice = issue_invoice(CustomerFactory())
    return_request = submit(invoice)
    staff_in_role(FINANCE_STAFF, username="wang.fin")
    log_in(page, "wang.fin", "pw-for-tests-1")
    page.goto("/admin/")
    page.get_by_role("link", name="Log received paper invoice").click()
    field = page.get_by_label("Invoice code and number")
    expect(field).to_be_focused()
    # The scanner types the code and number in one run and ends with Enter.
    page.keyboard.type(f"{invoice.code}{invoice.number}")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Invoice form present")).to_be_focused()
    page.keyboard.press("Space")  # invoice form present
    page.keyboard.press("Tab")  # deduction form: not needed for an ordinary invoice
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # undamaged
    page.keyboard.press("Tab")
    page.keyboard.type("SF Express")
    screenshot(page, "backoffice-log-receipt-filled")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # saves, and comes back to an empty form
    message = page.get_by_text(f"Matched to return #{return_request.pk}")
    expect(message).to_be_visible()
    expect(page.get_by_label("Invoice code and number")).to_have_value("")
    screenshot(page, "backoffice-log-receipt-saved")

    page.goto(f"/admin/returns/returnrequest/{return_request.pk}/change/")
    expect(page.get_by_text("Completed", exact=True).first).to_be_visible()
    return_request.refresh_from_db()
    assert return_request.state == ReturnState.COMPLETED
    assert return_request.mail_receipt.courier == "SF Express"
    screenshot(page, "backoffice-return-completed")
    page.goto("/admin/")
    expect(
        page.get_by_role("img", name="Returns waiting for paper, by days waiting")
    ).to_be_visible()
    screenshot(page, "backoffice-index-overview")


def test_a_reviewer_sees_the_scan_beside_the_invoice_and_approves_it(page):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from invoices.models import InvoiceType
    from returns.roles import ADMIN_REVIEWERS
    from tests.returns_helpers import png_bytes

    invoice = issue_invoice(CustomerFactory(), invoice_type=InvoiceType.SPECIAL)
    return_request = submit(
        invoice,
        certified=True,
        red_letter_form=SimpleUploadedFile("scan.png", png_bytes(), content_type="image/png"),
        red_letter_form_number="4403000100000001",
    )
    staff_in_role(ADMIN_REVIEWERS, username="zhao.rev")
    log_in(page, "zhao.rev", "pw-for-tests-1")
    page.goto("/admin/")
    page.get_by_role("link", name="Red-letter forms to review").click()
    page.get_by_role("link", name="4403000100000001").click()
    page.wait_for_load_state("load")
    scan = page.get_by_role("img", name="Scan of the red-letter information form")
    assert scan.evaluate("image => image.complete && image.naturalWidth > 0")
    screenshot(page, "backoffice-review-form")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Form 4403000100000001 approved.")).to_be_visible()
    return_request.refresh_from_db()
    assert return_request.red_letter_forms.get().review_state == "approved"
