"""The post room's pages: the customer's return slip, the receipt page's envelopes, the unmatched
paper queue and its actions, and where the back office links them."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from core.audit.actor import Actor
from invoices.models import InvoiceType
from returns.models import MailReceipt, ReturnRequest, ReturnState
from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF
from returns.services import EnvelopeItem, mail_envelope_log, return_request_cancel
from tests.factories import CustomerFactory, issue_digital_invoice, issue_invoice, staff_in_role
from tests.returns_helpers import log_paper, png_bytes, submit

pytestmark = pytest.mark.django_db

LOG_URL = "/admin/returns/mailreceipt/log/"
QUEUE_URL = "/admin/returns/mailreceipt/unmatched/"


@pytest.fixture
def finance(db):
    return staff_in_role(FINANCE_STAFF, username="fin")


@pytest.fixture
def finance_client(client, finance):
    client.force_login(finance)
    return client


def slip_url(rr) -> str:
    return reverse("billing:return_slip", args=[rr.pk])


# --- the return slip ----------------------------------------------------------------------------


def test_the_slip_prints_the_reference_its_qr_code_the_parts_and_the_address(client, invoice):
    rr = submit(invoice)
    client.force_login(invoice.customer.user)
    page = client.get(slip_url(rr)).content.decode()
    assert page.count(rr.reference) >= 2  # as text, and in the QR code's title
    assert '<svg role="img"' in page
    assert "The invoice form (发票联)" in page
    assert "The deduction form" not in page  # an ordinary invoice has none
    assert "311121" in page  # the mailing address's postal code (settings)
    assert "@media print" not in page  # the print styles live in slip.css (CSP)
    assert "css/slip.css" in page


def test_a_special_invoice_s_slip_asks_for_the_deduction_form_too(client, special_invoice):
    rr = submit(special_invoice, certified=False)
    client.force_login(special_invoice.customer.user)
    page = client.get(slip_url(rr)).content.decode()
    assert "The invoice form (发票联)" in page
    assert "The deduction form (抵扣联)" in page


def test_the_qr_code_on_the_slip_holds_the_reference(client, invoice):
    import segno

    rr = submit(invoice)
    client.force_login(invoice.customer.user)
    page = client.get(slip_url(rr)).content.decode()
    expected = segno.make_qr(rr.reference, error="m").svg_inline(scale=6, border=2)
    path = expected[expected.index("<path") :]
    assert path in page


def test_r12_another_customer_s_slip_is_not_found(client, invoice):
    rr = submit(invoice)
    client.force_login(CustomerFactory().user)
    assert client.get(slip_url(rr)).status_code == 404


def test_the_return_page_links_the_slip_while_the_paper_is_awaited(client, invoice, finance):
    rr = submit(invoice)
    client.force_login(invoice.customer.user)
    page = client.get(reverse("billing:return_detail", args=[rr.pk])).content.decode()
    assert slip_url(rr) in page
    assert rr.reference in page
    log_paper(invoice, finance)
    page = client.get(reverse("billing:return_detail", args=[rr.pk])).content.decode()
    assert slip_url(rr) not in page
    assert client.get(slip_url(rr)).status_code == 404


def test_right_after_refund_the_customer_lands_on_the_slip_link(client, invoice):
    client.force_login(invoice.customer.user)
    response = client.post(
        reverse("billing:refund", args=[invoice.pk]),
        {"problem": "title", "reason_code": "issuing_error", "reason": "Wrong title"},
        follow=True,
    )
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert slip_url(rr) in response.content.decode()


def test_no_slip_for_a_digital_invoice(client, customer):
    digital = issue_digital_invoice(customer)
    rr = submit(digital, buyer_booked=False)
    client.force_login(customer.user)
    assert client.get(slip_url(rr)).status_code == 404


def test_no_slip_for_a_certified_special_invoice(client, special_invoice):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=SimpleUploadedFile("s.png", png_bytes(), content_type="image/png"),
        red_letter_form_number="4403000100000001",
    )
    client.force_login(special_invoice.customer.user)
    assert client.get(slip_url(rr)).status_code == 404


def test_no_slip_for_a_cancelled_return(client, invoice):
    rr = submit(invoice)
    return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(invoice.customer.user))
    client.force_login(invoice.customer.user)
    assert client.get(slip_url(rr)).status_code == 404


# --- the receipt page: envelopes ----------------------------------------------------------------


def post(client, scan="", *, parts=(), envelope=(), **extra):
    data = {
        "code_and_number": scan,
        "received_at": "2026-11-30T10:30",
        "courier": "SF Express",
        "tracking_number": "SF1",
        "notes": "",
        "envelope": list(envelope),
        **{part: "on" for part in parts},
        **extra,
    }
    return client.post(LOG_URL, data, follow=True)


COMPLETE = ("invoice_form_present", "deduction_form_present", "undamaged")


def test_adding_an_invoice_keeps_it_in_the_envelope_and_empties_the_scan_field(
    finance_client, invoice
):
    rr = submit(invoice)
    response = post(finance_client, rr.reference, parts=COMPLETE, add="1")
    page = response.content.decode()
    assert f'name="envelope" value="111|{rr.reference}"' in page
    assert 'name="code_and_number" value=' not in page  # empty, ready for the next scan
    assert 'value="SF1"' in page  # the envelope's tracking number is kept
    assert "In this envelope: 1 invoice" in page
    assert not MailReceipt.objects.exists()


def test_r5_a_scan_saved_with_no_part_ticked_is_not_logged_and_asks_for_the_parts(
    finance_client, invoice
):
    """Enter in the scan field before the page's script has loaded (or without script) posts
    the form: nothing ticked means nobody looked yet, not an incomplete return to reject."""
    rr = submit(invoice)
    response = post(finance_client, rr.reference)
    page = response.content.decode()
    assert "Tick what came of this invoice (its forms, undamaged), then save." in page
    assert re.search(r'<input[^>]*name="invoice_form_present"[^>]*autofocus', page)
    assert f'name="code_and_number" value="{rr.reference}"' in page  # the scan is kept
    assert not MailReceipt.objects.exists()
    rr.refresh_from_db()
    assert rr.state == ReturnState.SUBMITTED


def test_saving_an_envelope_logs_every_invoice_in_it(finance_client, customer):
    first, second = issue_invoice(customer), issue_invoice(customer)
    one, two = submit(first), submit(second)
    response = post(
        finance_client,
        f"{second.code} {second.number}",
        parts=COMPLETE,
        envelope=[f"111|{one.reference}"],
    )
    assert response.redirect_chain[-1][0] == LOG_URL
    assert MailReceipt.objects.filter(tracking_number="SF1").count() == 2
    one.refresh_from_db()
    two.refresh_from_db()
    assert one.state == two.state == ReturnState.PROCESSING  # R4: both complete, both go on
    page = response.content.decode()
    assert "Just logged" in page
    assert f"Return {one.reference}: Processing" in page


def test_an_invoice_already_in_the_envelope_is_refused(finance_client, invoice):
    rr = submit(invoice)
    response = post(
        finance_client,
        f"{invoice.code}{invoice.number}",
        parts=COMPLETE,
        envelope=[f"111|{rr.reference}"],
    )
    assert "is already in this envelope" in response.content.decode()
    assert not MailReceipt.objects.exists()


def test_removing_an_invoice_from_the_envelope(finance_client, customer):
    first, second = issue_invoice(customer), issue_invoice(customer)
    one, two = submit(first), submit(second)
    response = post(
        finance_client,
        envelope=[f"111|{one.reference}", f"101|{two.reference}"],
        remove="0",
    )
    page = response.content.decode()
    assert f'value="101|{two.reference}"' in page
    assert one.reference not in page
    assert not MailReceipt.objects.exists()


def test_a_qr_code_that_disagrees_is_reported_and_nothing_is_saved(finance_client, invoice):
    submit(invoice)
    payload = f"01,04,{invoice.code},{invoice.number},1.00,20200101,,ABCD"
    page = post(finance_client, payload, parts=COMPLETE).content.decode()
    assert "does not agree with invoice" in page
    assert not MailReceipt.objects.exists()


def test_a_digital_invoice_scanned_says_digital_invoices_are_not_mailed(finance_client, customer):
    digital = issue_digital_invoice(customer)
    payload = f"01,32,,{digital.number},{digital.amount},20261101,,ABCD"
    page = post(finance_client, payload, parts=COMPLETE).content.decode()
    assert "digital invoices are not mailed" in page
    assert not MailReceipt.objects.exists()


def test_saving_an_empty_envelope_asks_for_a_scan(finance_client):
    page = post(finance_client).content.decode()
    assert "Scan the return slip or the invoice" in page


# --- the unmatched paper queue ------------------------------------------------------------------


@pytest.fixture
def unmatched(invoice, finance):
    [result] = mail_envelope_log(
        items=[EnvelopeItem(invoice.pk, True, False, True)], actor=Actor.for_user(finance)
    )
    return result.receipt


def test_the_queue_shows_the_paper_with_its_beijing_time_and_age(finance_client, unmatched):
    page = finance_client.get(QUEUE_URL).content.decode()
    local = timezone.localtime(unmatched.received_at)
    assert f"{local:%Y-%m-%d %H:%M}" in page
    assert "waiting 0 days" in page
    assert str(unmatched.invoice) in page
    assert "Mark as sent back" in page


@pytest.mark.parametrize(
    ("language", "says"),
    [
        ("en", "The 2 oldest of 3 pieces of unmatched paper are listed"),
        ("zh-hans", "共有 3 份未匹配的纸质发票，这里列出最早的 2 份"),
    ],
)
def test_a_queue_longer_than_the_page_says_how_much_paper_waits(
    finance_client, unmatched, customer, finance, monkeypatch, language, says
):
    # The page lists the oldest paper; what it leaves out is counted, never silently dropped.
    from returns import admin_postroom

    for _ in range(2):
        mail_envelope_log(
            items=[EnvelopeItem(issue_invoice(customer).pk, True, False, True)],
            actor=Actor.for_user(finance),
        )
    monkeypatch.setattr(admin_postroom, "UNMATCHED_SHOWN", 2)
    page = finance_client.get(QUEUE_URL, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert page.count("<tr data-receipt=") == 2
    assert f'<tr data-receipt="{unmatched.pk}"' in page  # the oldest first
    assert says in page

    monkeypatch.setattr(admin_postroom, "UNMATCHED_SHOWN", 3)
    page = finance_client.get(QUEUE_URL, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert page.count("<tr data-receipt=") == 3
    assert 'id="unmatched-more"' not in page


def test_sending_back_from_the_queue(finance_client, unmatched):
    response = finance_client.post(
        reverse("admin:returns_mailreceipt_send_back", args=[unmatched.pk]),
        {f"r{unmatched.pk}-courier": "EMS", f"r{unmatched.pk}-tracking_number": "EMS9"},
        follow=True,
    )
    assert "marked as sent back" in response.content.decode()
    unmatched.refresh_from_db()
    assert unmatched.sent_back_tracking_number == "EMS9"
    assert "No unmatched paper." in response.content.decode()


def test_sending_back_without_a_tracking_number_says_it_is_required(finance_client, unmatched):
    response = finance_client.post(
        reverse("admin:returns_mailreceipt_send_back", args=[unmatched.pk]),
        {f"r{unmatched.pk}-courier": "EMS"},
        follow=True,
    )
    assert "Enter the courier&#x27;s tracking number" in response.content.decode()
    unmatched.refresh_from_db()
    assert unmatched.sent_back_at is None


def test_matching_from_the_queue(finance_client, unmatched, invoice):
    rr = ReturnRequest.objects.create(
        invoice=invoice, medium=invoice.medium, reason="x", submitted_by=invoice.customer.user
    )
    page = finance_client.get(QUEUE_URL).content.decode()
    assert f"Match to return {rr.reference}" in page
    response = finance_client.post(
        reverse("admin:returns_mailreceipt_match", args=[unmatched.pk]),
        {"return_request": rr.pk},
        follow=True,
    )
    assert f"matched to return {rr.reference}" in response.content.decode()
    rr.refresh_from_db()
    assert rr.mail_receipt == unmatched


def test_matching_to_a_return_that_does_not_wait_shows_the_domain_error(
    finance_client, unmatched, invoice
):
    rr = submit(issue_invoice(invoice.customer))
    response = finance_client.post(
        reverse("admin:returns_mailreceipt_match", args=[unmatched.pk]),
        {"return_request": rr.pk},
        follow=True,
    )
    assert "Paper is matched only to a return of its own invoice." in response.content.decode()


def test_a_reviewer_sees_the_queue_but_cannot_act(client, unmatched):
    client.force_login(staff_in_role(ADMIN_REVIEWERS, username="rev"))
    page = client.get(QUEUE_URL).content.decode()
    assert str(unmatched.invoice) in page
    assert "Mark as sent back" not in page
    send_back = reverse("admin:returns_mailreceipt_send_back", args=[unmatched.pk])
    assert client.post(send_back, {f"r{unmatched.pk}-tracking_number": "T"}).status_code == 403
    assert (
        client.post(
            reverse("admin:returns_mailreceipt_match", args=[unmatched.pk]), {"return_request": 1}
        ).status_code
        == 403
    )
    assert client.get(LOG_URL).status_code == 403


def test_a_customer_cannot_reach_the_queue(client, unmatched, invoice):
    client.force_login(invoice.customer.user)
    assert client.get(QUEUE_URL).status_code == 302  # to the admin log-in


def test_the_admin_index_links_the_queue_with_its_count(finance_client, unmatched, customer):
    special = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    mail_envelope_log(
        items=[EnvelopeItem(special.pk, True, True, True)],
        actor=Actor.for_user(staff_in_role(FINANCE_STAFF, username="fin2")),
    )
    page = finance_client.get("/admin/").content.decode()
    assert QUEUE_URL in page
    assert '<span id="unmatched-paper-count">(2)</span>' in page
    assert '<td id="overview-unmatched-paper">2</td>' in page


def test_cancelled_return_paper_lands_in_the_queue_through_the_page(finance_client, invoice):
    rr = submit(invoice)
    return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(invoice.customer.user))
    post(finance_client, rr.reference, parts=COMPLETE)
    page = finance_client.get(QUEUE_URL).content.decode()
    assert str(invoice) in page


def test_find_answers_a_return_slip_s_reference_typed_or_scanned(finance_client, invoice):
    from returns.backoffice_selectors import back_office_search

    rr = submit(invoice)
    assert back_office_search(query=rr.reference).returns == [rr]
    assert back_office_search(query=rr.reference.lower().replace("-", "")).returns == [rr]
    page = finance_client.get("/admin/returns/returnrequest/find/", {"q": rr.reference})
    assert f"/admin/returns/returnrequest/{rr.pk}/change/" in page.content.decode()


def test_the_post_room_is_in_chinese_for_chinese_staff(finance_client, unmatched, invoice):
    finance_client.cookies["django_language"] = "zh-hans"
    queue = finance_client.get(QUEUE_URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "未匹配的纸质发票" in queue
    assert "标记为已寄回" in queue
    assert "已等待 0 天" in queue
    log = finance_client.get(LOG_URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "一次登记一个信封" in log
    assert "向此信封添加另一张发票" in log


def test_the_slip_is_in_chinese_for_a_chinese_customer(client, special_invoice):
    rr = submit(special_invoice, certified=False)
    client.force_login(special_invoice.customer.user)
    client.cookies["django_language"] = "zh-hans"
    page = client.get(slip_url(rr), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "退票单" in page
    assert "信封内应装" in page
    assert "抵扣联" in page
