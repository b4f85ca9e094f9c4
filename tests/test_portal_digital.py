"""The customer portal for digital invoices (数电票, issue 10) through Django's test client:
applying for one, downloading its file (R12), returning it (R3, R4) and following the return
while the buyer confirms the red-letter confirmation form (R6-R8, R11).

``TAX_SYSTEM_BACKEND`` is ``sandbox`` in tests: run on commit, it answers at once, so a return of
a never-booked invoice completes within the request and a booked one awaits the buyer.
"""

import datetime as dt
import html
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from invoices.models import (
    InvoiceApplication,
    InvoiceMedium,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
    TaxRequest,
)
from invoices.taxsystem.services import local_minute
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnRequest, ReturnState
from returns.services import return_request_await_buyer, return_request_buyer_declined
from tests.factories import (
    DIGITAL_INVOICE_PDF,
    VALID_USCC,
    CustomerFactory,
    fund,
    issue_digital_invoice,
    issue_invoice,
    mailing_fields,
)
from tests.returns_helpers import submit

pytestmark = pytest.mark.django_db

BUYER_FORM = "44030026110000123456"  # a red-letter confirmation form the buyer entered itself


@pytest.fixture
def client_in(client, customer):
    client.force_login(customer.user)
    return client


@pytest.fixture
def manual_tax_system(settings):
    settings.TAX_SYSTEM_BACKEND = "manual"


def page_text(response) -> str:
    """The page as a person reads it: tags gone, entities decoded, white space collapsed."""
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(text).split())


def credits(invoice) -> int:
    return LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED).count()


def completion_sms(rr) -> int:
    return SmsMessage.objects.filter(
        related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED
    ).count()


def awaiting_buyer(invoice, callbacks) -> ReturnRequest:
    """A booked digital invoice returned: the sandbox enters a form that awaits the buyer."""
    with callbacks(execute=True):
        rr = submit(invoice, buyer_booked=True)
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER
    return rr


# --- Apply: digital (the default) or paper ---------------------------------------------------


def _apply_data(**overrides) -> dict:
    return {
        "medium": "digital",
        "invoice_type": "ordinary",
        "amount": "100.00",
        "title": "Hangzhou Example Trading Co.",
        "taxpayer_id": VALID_USCC,
        **overrides,
    }


def test_the_apply_page_offers_digital_selected_by_default_and_paper(client_in, customer):
    fund(customer, "500.00")
    page = client_in.get(reverse("billing:apply")).content.decode()
    digital_radio = re.search(r'<input[^>]*name="medium"[^>]*value="digital"[^>]*>', page)
    paper_radio = re.search(r'<input[^>]*name="medium"[^>]*value="paper"[^>]*>', page)
    assert digital_radio is not None
    assert "checked" in digital_radio.group(0)
    assert paper_radio is not None
    assert "checked" not in paper_radio.group(0)
    assert "We also email the digital invoice to this address." in page
    assert 'data-medium-only="paper"' in page  # the mailing fieldset, hidden by JS when digital


def test_a_digital_application_needs_no_mailing_address_and_is_issued_and_emailed(
    client_in, customer, django_capture_on_commit_callbacks
):
    fund(customer, "500.00")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_in.post(
            reverse("billing:apply"), _apply_data(email="finance@example.com")
        )
    assert response.status_code == 302
    application = InvoiceApplication.objects.get(customer=customer)
    assert (application.medium, application.email) == ("digital", "finance@example.com")
    assert application.mailing_address == ""
    invoice = application.invoice
    assert invoice.is_digital
    assert len(invoice.number) == 20
    assert [message.to for message in mail.outbox] == [["finance@example.com"]]


def test_an_address_typed_before_switching_to_digital_is_not_kept(client_in, customer):
    fund(customer, "500.00")
    response = client_in.post(reverse("billing:apply"), _apply_data(**mailing_fields()))
    assert response.status_code == 302
    application = InvoiceApplication.objects.get(customer=customer)
    assert (application.mailing_recipient, application.mailing_address) == ("", "")


def test_a_paper_application_without_an_address_is_refused_next_to_its_fields_keeping_input(
    client_in, customer
):
    fund(customer, "500.00")
    response = client_in.post(reverse("billing:apply"), _apply_data(medium="paper"))
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"mailing_recipient", "mailing_phone", "mailing_address"}
    page = response.content.decode()
    assert 'value="Hangzhou Example Trading Co."' in page
    assert re.search(r'<input[^>]*value="paper"[^>]*checked', page)
    assert not InvoiceApplication.objects.exists()


def test_a_paper_application_with_its_address_is_a_paper_application(client_in, customer):
    fund(customer, "500.00")
    data = _apply_data(medium="paper", email="ignored@example.com", **mailing_fields())
    assert client_in.post(reverse("billing:apply"), data).status_code == 302
    application = InvoiceApplication.objects.get(customer=customer)
    assert (application.medium, application.mailing_recipient) == ("paper", "Li Lei")
    assert application.email == ""  # paper is mailed, not emailed


def test_a_page_loaded_before_digital_invoices_posts_no_medium_and_means_paper(client_in, customer):
    fund(customer, "500.00")
    data = _apply_data(**mailing_fields())
    del data["medium"]
    assert client_in.post(reverse("billing:apply"), data).status_code == 302
    assert InvoiceApplication.objects.get(customer=customer).medium == "paper"


def test_a_bad_email_address_is_refused_and_keeps_the_application(client_in, customer):
    fund(customer, "500.00")
    response = client_in.post(reverse("billing:apply"), _apply_data(email="not-an-address"))
    assert response.status_code == 400
    assert "email" in response.context["form"].errors
    assert 'value="not-an-address"' in response.content.decode()
    assert not InvoiceApplication.objects.exists()


def test_a_saved_profile_carries_the_medium_and_the_email(client_in, customer):
    fund(customer, "500.00")
    client_in.post(
        reverse("billing:apply"),
        _apply_data(email="finance@example.com", save_profile="on", profile_name="Digital"),
    )
    profile = customer.profiles.get()
    assert (profile.medium, profile.email) == ("digital", "finance@example.com")
    response = client_in.get(reverse("billing:apply"), {"profile": profile.pk})
    initial = response.context["form"].initial
    assert (initial["medium"], initial["email"]) == ("digital", "finance@example.com")
    assert 'value="finance@example.com"' in response.content.decode()


# --- Invoice Management: kind, number, download ----------------------------------------------


def test_each_row_shows_the_invoices_kind_and_a_digital_one_its_20_digit_number(
    client_in, customer, digital, digital_special
):
    paper = issue_invoice(customer)
    response = client_in.get("/billing/invoices/")
    rows = {
        invoice_id: page_text_of(row)
        for invoice_id, row in re.findall(
            r'<tr data-invoice="(\d+)">(.*?)</tr>', response.content.decode(), re.S
        )
    }
    assert "Digital invoice (ordinary invoice)" in rows[str(digital.pk)]
    assert "Digital invoice (VAT special invoice)" in rows[str(digital_special.pk)]
    assert "Paper VAT ordinary invoice" in rows[str(paper.pk)]
    assert f" {digital.number} " in f" {rows[str(digital.pk)]} "
    assert f"{paper.code} {paper.number}" in rows[str(paper.pk)]
    download = reverse("billing:invoice_download", args=[digital.pk])
    assert download in response.content.decode()
    assert "Download" in rows[str(digital.pk)]
    assert "Download" not in rows[str(paper.pk)]  # a paper invoice has no file


def page_text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_digital_rows_cost_no_query_of_their_own(client, django_assert_num_queries):
    one, many = CustomerFactory(), CustomerFactory()
    issue_digital_invoice(one)
    for _ in range(5):
        issue_digital_invoice(many, invoice_type=InvoiceType.SPECIAL)
    client.force_login(one.user)
    # session, user, header, the page's rows (no pending application, no earlier return to read)
    with django_assert_num_queries(4):
        assert client.get("/billing/invoices/").status_code == 200
    client.force_login(many.user)
    with django_assert_num_queries(4):
        assert client.get("/billing/invoices/").status_code == 200


def test_r12_the_owner_downloads_the_digital_invoices_file_as_a_private_attachment(
    client_in, digital
):
    response = client_in.get(reverse("billing:invoice_download", args=[digital.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{digital.number}.pdf"'
    assert "private" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == DIGITAL_INVOICE_PDF


def test_r12_another_customers_digital_invoice_file_is_404(client, digital):
    client.force_login(CustomerFactory().user)
    response = client.get(reverse("billing:invoice_download", args=[digital.pk]))
    assert response.status_code == 404
    assert DIGITAL_INVOICE_PDF not in response.content


def test_a_paper_invoice_has_no_file_to_download(client_in, invoice):
    assert client_in.get(reverse("billing:invoice_download", args=[invoice.pk])).status_code == 404


def test_r12_downloading_needs_a_log_in(client, digital):
    response = client.get(reverse("billing:invoice_download", args=[digital.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- Refund on a digital invoice -------------------------------------------------------------

VALID_DIGITAL_REFUND = {
    "problem": "title",
    "reason_code": "issuing_error",
    "reason": "The title misses our branch",
    "buyer_booked": "no",
}


def refund_url(invoice) -> str:
    return reverse("billing:refund", args=[invoice.pk])


def test_r3_a_digital_refund_asks_the_booked_question_and_nothing_about_paper(
    client_in, digital_special
):
    response = client_in.get(refund_url(digital_special))
    text = page_text(response)
    assert "Has the buyer booked this invoice or confirmed its use (入账 / 用途确认)?" in text
    assert "Red-letter confirmation form number (if the buyer already entered one)" in text
    assert "Digital invoice (VAT special invoice)" in text
    assert "Has this invoice been certified?" not in text
    assert "Invoice Returns Desk" not in text  # no mailing address
    assert "Tracking number" not in text
    assert 'type="file"' not in response.content.decode()
    # The public contract's names.
    assert re.search(r'<label for="id_reason"[^>]*>Reason</label>', response.content.decode())
    assert ">OK</button>" in response.content.decode()
    assert ">Cancel</a>" in response.content.decode()


def test_r3_a_paper_refund_asks_no_booked_question(client_in, special_invoice):
    text = page_text(client_in.get(refund_url(special_invoice)))
    assert "Has this invoice been certified?" in text
    assert "Has the buyer booked this invoice" not in text
    assert "red-letter confirmation form" not in text.lower()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"buyer_booked": ""},
            "buyer_booked",
            "Please answer: has the buyer booked this invoice or confirmed its use?",
        ),
        (
            {"buyer_form_number": "4403 0026 1100"},
            "buyer_form_number",
            "A red-letter confirmation form number is 20 digits: check the number.",
        ),
        ({"reason": "   "}, "reason", "Please say why you are returning this invoice."),
    ],
    ids=["booked-unanswered", "short-form-number", "blank-reason"],
)
def test_r3_a_bad_digital_refund_is_refused_and_keeps_what_was_entered(
    client_in, digital, overrides, field, message
):
    data = {**VALID_DIGITAL_REFUND, "reason_code": "sales_return", **overrides}
    response = client_in.post(refund_url(digital), data)
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    page = response.content.decode()
    assert message in html.unescape(page)
    assert '<option value="sales_return" selected>' in page
    entered = {**VALID_DIGITAL_REFUND, **overrides}
    if entered["reason"].strip():
        assert entered["reason"] in page
    if entered["buyer_booked"]:
        assert re.search(r'<input[^>]*name="buyer_booked" value="no"[^>]*checked', page)
    if entered.get("buyer_form_number"):
        assert f'value="{entered["buyer_form_number"]}"' in page
    assert not ReturnRequest.objects.exists()


def test_r3_r6_a_never_booked_digital_invoice_is_returned_and_completes_at_once(
    client_in, digital, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_in.post(refund_url(digital), VALID_DIGITAL_REFUND)
    rr = ReturnRequest.objects.get(invoice=digital)
    assert response.status_code == 302
    assert response["Location"] == reverse("billing:return_detail", args=[rr.pk])
    assert (rr.state, rr.buyer_booked, rr.courier) == (ReturnState.COMPLETED, False, "")
    assert credits(digital) == 1
    assert completion_sms(rr) == 1


def test_r3_the_buyers_own_form_number_is_taken_as_typed_in_groups(
    client_in, digital, django_capture_on_commit_callbacks
):
    grouped = " ".join(BUYER_FORM[i : i + 4] for i in range(0, 20, 4))
    data = {**VALID_DIGITAL_REFUND, "buyer_booked": "yes", "buyer_form_number": grouped}
    with django_capture_on_commit_callbacks(execute=True):
        assert client_in.post(refund_url(digital), data).status_code == 302
    rr = ReturnRequest.objects.get(invoice=digital)
    assert rr.buyer_form_number == BUYER_FORM
    assert rr.state == ReturnState.COMPLETED  # the provider confirms the buyer's own form


def test_r3_a_booked_digital_invoice_awaits_the_buyer(
    client_in, digital_special, django_capture_on_commit_callbacks
):
    data = {**VALID_DIGITAL_REFUND, "buyer_booked": "yes"}
    with django_capture_on_commit_callbacks(execute=True):
        client_in.post(refund_url(digital_special), data)
    rr = ReturnRequest.objects.get(invoice=digital_special)
    assert (rr.state, rr.buyer_booked) == (ReturnState.AWAITING_BUYER, True)
    assert credits(digital_special) == 0


# --- The return page -------------------------------------------------------------------------


def steps(response) -> list[tuple[str, str]]:
    """The progress bar: (class, label) of each step."""
    found = re.findall(
        r'<li class="([a-z]*)"[^>]*>\s*<span class="step-label">([^<]*)</span>',
        response.content.decode(),
    )
    return [(css, html.unescape(label)) for css, label in found]


def test_r11_awaiting_buyer_shows_the_form_what_to_do_and_the_deadline_in_beijing_time(
    client_in, digital_special, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(digital_special, django_capture_on_commit_callbacks)
    tax_request = rr.tax_request
    response = client_in.get(reverse("billing:return_detail", args=[rr.pk]))
    text = page_text(response)
    assert f"Red-letter confirmation form number {tax_request.red_letter_form_number}" in text
    assert f"Confirm by {local_minute(tax_request.confirm_by)} (Beijing time)" in text
    assert re.search(r"Time left (2 days, 23 hours|3 days)", text)
    assert "Log in to your company's e-tax platform (电子税务局)." in text
    assert "红字发票业务 → 红字信息确认单" in text
    assert f"Find form {tax_request.red_letter_form_number} and confirm it" in text
    assert steps(response) == [
        ("done", "Submitted"),
        ("done", "Sent to the tax system"),
        ("current", "Awaiting buyer confirmation"),
        ("", "Completed"),
        ("", "SMS sent"),
    ]
    # Nothing of the paper path.
    for paper in ("Courier", "Tracking number", "Cancel return", "How you sent the paper"):
        assert paper not in text
    assert "Invoice Returns Desk" not in text


def test_a_booked_return_on_a_real_tax_system_says_the_form_comes_next(
    manual_tax_system, client_in, digital_special, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rr = submit(digital_special, buyer_booked=True)
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_TAX  # finance has not entered the form yet
    response = client_in.get(reverse("billing:return_detail", args=[rr.pk]))
    text = page_text(response)
    assert "Next, we enter a red-letter confirmation form (红字发票信息确认单)" in text
    assert "Next, our finance team issues a red-letter invoice" not in text
    assert steps(response) == [
        ("done", "Submitted"),
        ("done", "Sent to the tax system"),
        ("current", "Buyer's confirmation"),
        ("", "Completed"),
        ("", "SMS sent"),
    ]


def test_a_never_booked_return_on_a_real_tax_system_goes_straight_to_the_red_letter(
    manual_tax_system, client_in, digital, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rr = submit(digital, buyer_booked=False)
    response = client_in.get(reverse("billing:return_detail", args=[rr.pk]))
    text = page_text(response)
    assert "Next, our finance team issues a red-letter invoice" in text
    assert "Buyer's confirmation" not in [label for _css, label in steps(response)]


def test_a_lapsed_form_says_the_time_is_over(
    client_in, digital_special, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(digital_special, django_capture_on_commit_callbacks)
    TaxRequest.objects.filter(pk=rr.tax_request_id).update(
        confirm_by=timezone.now() - dt.timedelta(minutes=1)
    )
    text = page_text(client_in.get(reverse("billing:return_detail", args=[rr.pk])))
    assert "Time left None: the 72 hours are over." in text


def test_the_sandbox_offers_the_buyers_buttons_as_a_testing_aid(
    client_in, digital_special, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(digital_special, django_capture_on_commit_callbacks)
    response = client_in.get(reverse("billing:return_detail", args=[rr.pk]))
    page = response.content.decode()
    assert "Sandbox: act as the buyer (testing aid)" in page
    assert ">I have confirmed it</button>" in page
    assert ">I have refused it</button>" in page
    url = reverse("billing:return_simulate_buyer", args=[rr.pk])
    forms = re.findall(rf'<form method="post" action="{url}"[^>]*>(.*?)</form>', page, re.S)
    assert len(forms) == 2
    assert all('name="csrfmiddlewaretoken"' in form for form in forms)
    assert sorted(re.findall(r'name="decision" value="(\w+)"', page)) == ["confirmed", "refused"]


def test_a_real_tax_system_offers_no_buyers_buttons(
    manual_tax_system, client_in, digital_special, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rr = submit(digital_special, buyer_booked=True)
    return_request_await_buyer(return_request_id=rr.pk, form_number=BUYER_FORM)
    response = client_in.get(reverse("billing:return_detail", args=[rr.pk]))
    text = page_text(response)
    assert f"Red-letter confirmation form number {BUYER_FORM}" in text
    assert "Sandbox" not in text
    assert "I have confirmed it" not in text


def test_the_owner_confirms_as_the_buyer_and_the_return_completes_once(
    client_in, digital_special, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(digital_special, django_capture_on_commit_callbacks)
    url = reverse("billing:return_simulate_buyer", args=[rr.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client_in.post(url, {"decision": "confirmed"}, follow=True)
    assert response.redirect_chain == [(reverse("billing:return_detail", args=[rr.pk]), 302)]
    text = page_text(response)
    assert "Sandbox: the buyer's confirmation was simulated." in text
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    assert (credits(digital_special), completion_sms(rr)) == (1, 1)
    red = rr.invoice.red_letter_invoice
    assert f"Red-letter invoice number {red.number}" in text
    assert f"Red-letter confirmation form number {rr.tax_request.red_letter_form_number}" in text
    # The success SMS went out after commit: the page says so now.
    response = client_in.get(reverse("billing:return_detail", args=[rr.pk]))
    assert [label for css, label in steps(response) if css == "done"] == [
        "Submitted",
        "Sent to the tax system",
        "Confirmed by the buyer",
        "Completed",
        "SMS sent",
    ]
    # A second click changes nothing: the return no longer awaits the buyer.
    with django_capture_on_commit_callbacks(execute=True):
        again = client_in.post(url, {"decision": "confirmed"}, follow=True)
    assert "not awaiting the buyer" in page_text(again)
    assert (credits(digital_special), completion_sms(rr)) == (1, 1)


def test_the_owner_refuses_as_the_buyer_and_may_return_the_invoice_again(
    client_in, digital_special, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(digital_special, django_capture_on_commit_callbacks)
    url = reverse("billing:return_simulate_buyer", args=[rr.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client_in.post(url, {"decision": "refused"}, follow=True)
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    text = page_text(response)
    assert "The buyer refused red-letter confirmation form" in text
    assert ("stopped", "Buyer's confirmation") in steps(response)
    assert "Refused by the buyer" in text
    assert reverse("billing:refund", args=[digital_special.pk]) in response.content.decode()
    assert (credits(digital_special), completion_sms(rr)) == (0, 0)


def test_a_lapsed_return_shows_where_it_stopped_and_why(
    manual_tax_system, client_in, digital_special, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rr = submit(digital_special, buyer_booked=True)
    return_request_await_buyer(return_request_id=rr.pk, form_number=BUYER_FORM)
    rr.refresh_from_db()
    TaxRequest.objects.filter(pk=rr.tax_request_id).update(
        confirm_by=timezone.now() - dt.timedelta(minutes=1)
    )
    return_request_buyer_declined(return_request_id=rr.pk, expired=True)  # finance records it
    response = client_in.get(reverse("billing:return_detail", args=[rr.pk]))
    text = page_text(response)
    assert "not confirmed within 72 hours and lapsed" in text
    assert ("stopped", "Buyer's confirmation") in steps(response)
    assert "Not confirmed within 72 hours" in text


@pytest.mark.parametrize("decision", ["confirmed", "refused"])
def test_r12_another_customer_cannot_act_as_the_buyer_of_my_return(
    client, digital_special, django_capture_on_commit_callbacks, decision
):
    rr = awaiting_buyer(digital_special, django_capture_on_commit_callbacks)
    client.force_login(CustomerFactory().user)
    response = client.post(
        reverse("billing:return_simulate_buyer", args=[rr.pk]), {"decision": decision}
    )
    assert response.status_code == 404
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER
    assert client.get(reverse("billing:return_detail", args=[rr.pk])).status_code == 404


def test_a_real_tax_system_refuses_the_buyers_buttons(
    manual_tax_system, client_in, digital_special, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rr = submit(digital_special, buyer_booked=True)
    return_request_await_buyer(return_request_id=rr.pk, form_number=BUYER_FORM)
    response = client_in.post(
        reverse("billing:return_simulate_buyer", args=[rr.pk]),
        {"decision": "confirmed"},
        follow=True,
    )
    assert "Only the sandbox tax system can act as the buyer." in page_text(response)
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER


def test_the_buyers_buttons_take_only_a_post_with_a_decision(
    client_in, digital_special, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(digital_special, django_capture_on_commit_callbacks)
    url = reverse("billing:return_simulate_buyer", args=[rr.pk])
    assert client_in.get(url).status_code == 405
    assert client_in.post(url, {}).status_code == 400
    assert client_in.post(url, {"decision": "maybe"}).status_code == 400
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER


def test_the_buyers_buttons_need_the_csrf_token(
    customer, digital_special, django_capture_on_commit_callbacks
):
    from django.test import Client

    rr = awaiting_buyer(digital_special, django_capture_on_commit_callbacks)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(customer.user)
    response = strict.post(
        reverse("billing:return_simulate_buyer", args=[rr.pk]), {"decision": "confirmed"}
    )
    assert response.status_code == 403
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER


def test_a_completed_never_booked_return_shows_the_digital_path(
    client_in, digital, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rr = submit(digital, buyer_booked=False)
    response = client_in.get(reverse("billing:return_detail", args=[rr.pk]))
    assert steps(response) == [
        ("done", "Submitted"),
        ("done", "Sent to the tax system"),
        ("done", "Completed"),
        ("done", "SMS sent"),
    ]
    text = page_text(response)
    assert f"Invoice number {digital.number}" in text
    assert "Booked or use confirmed by the buyer (入账 / 用途确认) No" in text
    assert "Paper received" not in text
    assert "Form reviewed" not in text


def test_the_digital_return_page_speaks_chinese(
    client_in, customer, digital_special, django_capture_on_commit_callbacks
):
    customer.language = "zh-hans"
    customer.save(update_fields=["language"])
    rr = awaiting_buyer(digital_special, django_capture_on_commit_callbacks)
    response = client_in.get(
        reverse("billing:return_detail", args=[rr.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    text = page_text(response)
    assert "待购买方确认" in text
    assert "红字发票信息确认单编号" in text
    assert "（北京时间）" in text
    assert "我已确认" in text
    assert "电子发票（增值税专用发票）" in text


def test_the_chinese_apply_page_offers_digital_and_paper(client_in, customer):
    fund(customer, "10.00")
    text = page_text(client_in.get(reverse("billing:apply"), HTTP_ACCEPT_LANGUAGE="zh-hans"))
    assert "数电票（全面数字化的电子发票）" in text
    assert "纸质发票" in text
    assert "我们也会将数电票发送至此邮箱。" in text


def test_a_paper_return_still_shows_its_paper_path(client_in, invoice):
    rr = submit(invoice)
    text = page_text(client_in.get(reverse("billing:return_detail", args=[rr.pk])))
    assert "Paper received" in text
    assert "Cancel return" in text
    assert "Booked or use confirmed" not in text
    assert rr.medium == InvoiceMedium.PAPER
