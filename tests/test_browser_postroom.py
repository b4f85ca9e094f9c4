"""The post room in a real browser: a clerk logs ten envelopes from the keyboard alone (slip
codes, invoice QR codes, code + number; one envelope holding two invoices, one whose paper
matches no open return), then works the unmatched paper queue by keyboard; and a customer's
return slip, on screen and printed on one A4 page."""

import datetime as dt
import io

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.audit.actor import Actor
from invoices.models import InvoiceType
from returns.models import MailReceipt, ReturnRequest, ReturnState
from returns.roles import FINANCE_STAFF
from returns.selectors import mail_receipts_unmatched
from returns.services import EnvelopeItem, mail_envelope_log, return_request_cancel
from tests.browser_fixtures import log_in, screenshot
from tests.factories import CustomerFactory, issue_invoice, staff_in_role
from tests.returns_helpers import submit
from tests.test_browser_digital import sandbox_digital_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def qr_payload(invoice) -> str:
    """What a scanner types for the QR code printed on ``invoice``."""
    kind = "01" if invoice.invoice_type == InvoiceType.SPECIAL else "04"
    date = f"{timezone.localtime(invoice.issued_at):%Y%m%d}"
    check = "" if kind == "01" else "12345678901234567890"
    return f"01,{kind},{invoice.code},{invoice.number},{invoice.amount},{date},{check},A1B2"


def scan_parts(page, *, special: bool) -> None:
    """After the scanner's Enter: tick the parts that are there (Space), Tab between them; the
    focus ends on "Undamaged"."""
    expect(page.get_by_label("Invoice form present")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    if special:
        page.keyboard.press("Space")  # deduction form present
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # undamaged
    expect(page.get_by_label("Undamaged")).to_be_checked()


def scan(page, text: str) -> None:
    field = page.get_by_label("Invoice code and number")
    expect(field).to_be_focused()
    page.keyboard.type(text)  # the scanner types the code...
    page.keyboard.press("Enter")  # ...and ends with Enter


def save_envelope(page, tracking: str) -> None:
    page.keyboard.press("Tab")  # courier
    page.keyboard.type("SF Express")
    page.keyboard.press("Tab")  # tracking number
    page.keyboard.type(tracking)
    with page.expect_navigation():
        page.keyboard.press("Enter")  # saves, and comes back for the next envelope
    expect(page.get_by_label("Invoice code and number")).to_be_focused()
    expect(page.get_by_label("Invoice code and number")).to_have_value("")


def test_a_clerk_logs_ten_envelopes_by_keyboard_then_works_the_unmatched_queue(page):
    company = CustomerFactory(name="杭州云启科技有限公司")
    other = CustomerFactory(name="Shanghai Example Ltd.")
    ordinary = [issue_invoice(company) for _ in range(5)] + [issue_invoice(other)]
    special = [issue_invoice(c, invoice_type=InvoiceType.SPECIAL) for c in (company, other)]
    two_in_one = [issue_invoice(company), issue_invoice(company, invoice_type=InvoiceType.SPECIAL)]
    returns = {inv.pk: submit(inv, certified=False) for inv in ordinary + special + two_in_one}
    # Envelope 10: the customer cancelled its return; the paper came anyway.
    cancelled_invoice = issue_invoice(company)
    cancelled = submit(cancelled_invoice)
    return_request_cancel(return_request_id=cancelled.pk, actor=Actor.for_user(company.user))
    # Already in the queue since three days: paper logged before anyone applied, and a return
    # of its invoice that waits for paper (made in the spreadsheet days, before the services
    # matched paper on submit).
    finance = staff_in_role(FINANCE_STAFF, username="wang.fin")
    waiting_invoice = issue_invoice(other)
    [earlier] = mail_envelope_log(
        items=[EnvelopeItem(waiting_invoice.pk, True, False, True)],
        actor=Actor.for_user(finance),
        received_at=timezone.now() - dt.timedelta(days=3),
    )
    waiting_return = ReturnRequest.objects.create(
        invoice=waiting_invoice,
        medium=waiting_invoice.medium,
        reason="Wrong title",
        submitted_by=other.user,
    )
    digital = sandbox_digital_invoice(company)  # the sandbox issues it on commit

    log_in(page, "wang.fin", "pw-for-tests-1")
    page.goto("/admin/")
    page.get_by_role("link", name="Log received paper invoice").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")

    # A digital invoice's QR code: refused with a message when it is put in the envelope (Enter
    # on a part), nothing saved, the entry kept in the focused field to be cleared.
    scan(page, f"01,32,,{digital.number},{digital.amount},20261101,,ABCD")
    expect(page.get_by_label("Invoice form present")).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_text("digital invoices are not mailed")).to_be_visible()
    expect(page.get_by_label("Invoice code and number")).to_be_focused()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Backspace")

    def r(invoice):
        return returns[invoice.pk]

    envelopes = [
        (r(ordinary[0]).reference, ordinary[0]),  # 1: the slip
        (qr_payload(ordinary[1]), ordinary[1]),  # 2: the invoice's QR code
        (f"{ordinary[2].code} {ordinary[2].number}", ordinary[2]),  # 3: code + number typed
        (f"{ordinary[3].code}{ordinary[3].number}", ordinary[3]),  # 4: a barcode's one run
        (r(special[0]).reference.lower(), special[0]),  # 5: a slip typed in lower case
        (qr_payload(special[1]), special[1]),  # 6: a special invoice's QR code
        (r(ordinary[4]).reference, ordinary[4]),  # 7
        (qr_payload(ordinary[5]), ordinary[5]),  # 8
    ]
    for number, (text, invoice) in enumerate(envelopes, start=1):
        scan(page, text)
        scan_parts(page, special=invoice.invoice_type == InvoiceType.SPECIAL)
        save_envelope(page, f"SF{number:04d}")
        expect(page.get_by_text(f"Matched to return #{r(invoice).pk}")).to_be_visible()
        expect(page.locator("#just-logged")).to_contain_text(invoice.number)

    # 9: one envelope, two invoices: Enter on a part keeps the first and waits for the next.
    scan(page, r(two_in_one[0]).reference)
    scan_parts(page, special=False)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_label("Invoice code and number")).to_be_focused()
    expect(page.locator("#envelope")).to_contain_text("In this envelope: 1 invoice")
    expect(page.locator("#envelope")).to_contain_text(r(two_in_one[0]).reference)
    scan(page, qr_payload(two_in_one[1]))
    scan_parts(page, special=True)
    screenshot(page, "postroom-envelope-with-two-invoices")
    save_envelope(page, "SF0009")
    for invoice in two_in_one:
        expect(page.get_by_text(f"Matched to return #{r(invoice).pk}")).to_be_visible()

    # 10: paper that matches no open return.
    scan(page, f"{cancelled_invoice.code} {cancelled_invoice.number}")
    scan_parts(page, special=False)
    save_envelope(page, "SF0010")
    expect(page.get_by_text(f"Invoice {cancelled_invoice} logged unmatched")).to_be_visible()
    expect(page.locator("#just-logged")).to_contain_text("Unmatched")
    screenshot(page, "postroom-ten-envelopes-logged")

    # The database: ten envelopes, eleven invoices, every open return advanced (R4: complete
    # paper → processed; the sandbox tax system completes them), the tenth paper unmatched.
    logged = MailReceipt.objects.exclude(pk=earlier.receipt.pk)
    assert logged.count() == 11
    assert sorted(set(logged.values_list("tracking_number", flat=True))) == [
        f"SF{n:04d}" for n in range(1, 11)
    ]
    for return_request in returns.values():
        return_request.refresh_from_db()
        assert return_request.state == ReturnState.COMPLETED, return_request.reference
        assert return_request.mail_receipt.courier == "SF Express"
    tenth = logged.get(invoice=cancelled_invoice)
    assert set(mail_receipts_unmatched()) == {earlier.receipt, tenth}

    # The unmatched paper queue, oldest first, worked by keyboard.
    page.get_by_role("link", name="Unmatched paper").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    rows = page.locator("#unmatched-paper tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(str(waiting_invoice))
    expect(rows.nth(0)).to_contain_text("waiting 3 days")
    expect(rows.nth(1)).to_contain_text(str(cancelled_invoice))
    screenshot(page, "postroom-unmatched-queue")
    match = page.get_by_role("button", name=f"Match to return {waiting_return.reference}")
    expect(match).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_text(f"matched to return {waiting_return.reference}")).to_be_visible()
    expect(rows).to_have_count(1)
    tracking = page.get_by_label(f"Tracking number sending back {cancelled_invoice}")
    expect(tracking).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_label(f"Courier sending back {cancelled_invoice}")).to_be_focused()
    page.keyboard.type("EMS")
    page.keyboard.press("Tab")
    page.keyboard.type("EMS0000123")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_text("marked as sent back")).to_be_visible()
    expect(page.get_by_text("No unmatched paper.")).to_be_visible()

    waiting_return.refresh_from_db()
    assert waiting_return.mail_receipt == earlier.receipt
    assert waiting_return.state == ReturnState.COMPLETED
    tenth.refresh_from_db()
    assert (tenth.sent_back_courier, tenth.sent_back_tracking_number) == ("EMS", "EMS0000123")
    assert tenth.sent_back_by == finance
    assert not mail_receipts_unmatched().exists()


def test_the_customer_prints_a_return_slip_of_one_a4_page(page):
    from pypdf import PdfReader

    company = CustomerFactory(name="杭州云启科技有限公司")
    invoice = issue_invoice(company, invoice_type=InvoiceType.SPECIAL)
    log_in(page, company.user.username, "pw-for-tests-1")
    return_request = submit(invoice, certified=False)
    page.goto(f"/billing/returns/{return_request.pk}/")
    page.get_by_role("link", name="Print the return slip").click()
    expect(page.locator("[data-reference]")).to_have_text(return_request.reference)
    expect(
        page.get_by_role("img", name=f"QR code of return {return_request.reference}")
    ).to_be_visible()
    expect(page.locator("[data-parts]")).to_contain_text("The deduction form (抵扣联)")
    expect(page.get_by_text("311121")).to_be_visible()
    screenshot(page, "postroom-return-slip")
    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="Print the return slip")).to_be_hidden()
    pdf = PdfReader(io.BytesIO(page.pdf(format="A4", print_background=True)))
    assert len(pdf.pages) == 1
    assert return_request.reference in pdf.pages[0].extract_text()
    # On a phone the slip fits the screen's width.
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 375, "height": 740})
    qr_box = page.get_by_role("img", name=f"QR code of return {return_request.reference}")
    assert qr_box.bounding_box()["width"] <= 375


def test_r12_another_customer_s_return_slip_is_not_found_in_the_browser(page):
    owner = CustomerFactory()
    return_request = submit(issue_invoice(owner))
    stranger = CustomerFactory()
    log_in(page, stranger.user.username, "pw-for-tests-1")
    response = page.goto(f"/billing/returns/{return_request.pk}/slip/")
    assert response is not None
    assert response.status == 404
