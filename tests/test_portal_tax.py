"""The customer portal shows the tax system's reality (issue 9): every invoice's amount, tax
rate, tax and total; the reason code; what a certified special invoice sends back (R3, R4);
and the return page telling the truth about the tax system's outcome (R6-R8, R11).

``TAX_SYSTEM_BACKEND`` is ``sandbox`` in tests: with Celery eager the sandbox platform answers
at once, so a return whose paper is logged completes within the request. With ``manual`` it
stays *awaiting the tax system* until finance records the outcome.
"""

import datetime as dt
import html
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.audit.actor import Actor
from invoices.models import InvoiceState, InvoiceType, ReversalReason
from invoices.taxsystem.interface import RedLetterIssued, TaxResult
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnRequest, ReturnState
from returns.services import return_request_record_outcome
from tests.factories import CustomerFactory, UserFactory, issue_invoice
from tests.returns_helpers import log_paper, pdf_upload, png_bytes, submit

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A total of 1000.00 at 6 %: amount 1000 / 1.06 = 943.396… → 943.40 (half-up), tax the rest.
# As the portal writes them (thousands grouped: ``invoices.tax.money_as_written``).
TOTAL, AMOUNT, TAX = "1,000.00", "943.40", "56.60"


@pytest.fixture
def client_in(client, customer):
    client.force_login(customer.user)
    return client


@pytest.fixture
def finance(db):
    return UserFactory(username="finance", is_staff=True)


@pytest.fixture
def manual_tax_system(settings):
    """Production's backend: finance acts in the tax system and records the outcome by hand."""
    settings.TAX_SYSTEM_BACKEND = "manual"


def earlier_month_invoice(customer, **kwargs):
    """Issued in an earlier month: R6 reverses it with a red-letter invoice."""
    return issue_invoice(customer, issued_at=timezone.now() - dt.timedelta(days=40), **kwargs)


def text(fragment: str) -> str:
    """What a reader sees: tags dropped, entities decoded, white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def element(page: str, tag: str, marker: str) -> str:
    """The first ``<tag …marker…>…</tag>`` of the page (no nesting of the same tag)."""
    match = re.search(rf"<{tag}\b[^>]*{marker}[^>]*>.*?</{tag}>", page, re.S)
    assert match, f"no <{tag}> with {marker} in the page"
    return match.group(0)


def detail(client, rr):
    return client.get(reverse("billing:return_detail", args=[rr.pk]))


def complete_return(rr, finance, django_capture_on_commit_callbacks):
    """Finance logs the paper; the sandbox tax system acts at once (eager Celery)."""
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(rr.invoice, finance)
    rr.refresh_from_db()
    return rr


def refund_post(**overrides) -> dict:
    return {"problem": "title", "reason_code": "issuing_error", "reason": "Wrong title"} | overrides


def steps_of(response) -> dict:
    return {step.key: step for step in response.context["timeline"]}


# --- Tax breakdown ---------------------------------------------------------------------------


def test_invoice_management_shows_each_invoices_total_with_amount_tax_rate_and_tax(
    client_in, invoice
):
    page = client_in.get("/billing/invoices/").content.decode()
    header = text(element(page, "thead", ""))
    assert "Total (tax included)" in header
    row = text(element(page, "tr", f'data-invoice="{invoice.pk}"'))
    assert f"¥{TOTAL}" in row
    assert f"Amount ¥{AMOUNT} + tax 6% ¥{TAX}" in row


def test_invoice_management_labels_the_invoiceable_amount_as_tax_included(client_in, invoice):
    page = client_in.get("/billing/invoices/").content.decode()
    assert "Invoiceable amount (tax included)" in text(page)


def test_the_refund_page_shows_the_full_tax_breakdown_of_the_invoice(client_in, invoice):
    page = text(client_in.get(reverse("billing:refund", args=[invoice.pk])).content.decode())
    assert f"Amount before tax ¥{AMOUNT}" in page
    assert "Tax rate 6%" in page
    assert f"Tax ¥{TAX}" in page
    assert f"Total (tax included) ¥{TOTAL}" in page


def test_the_return_page_shows_the_full_tax_breakdown_of_the_invoice(client_in, invoice):
    rr = submit(invoice)
    page = text(detail(client_in, rr).content.decode())
    assert f"Amount before tax ¥{AMOUNT} Tax rate 6% Tax ¥{TAX} Total (tax included) ¥{TOTAL}" in (
        page
    )


# --- R3: the reason code ----------------------------------------------------------------------


def test_r3_the_refund_form_offers_the_four_reason_codes_with_issuing_error_chosen(
    client_in, invoice
):
    page = client_in.get(reverse("billing:refund", args=[invoice.pk])).content.decode()
    select = element(page, "select", 'name="reason_code"')
    assert re.findall(r'<option value="([a-z_]+)"', select) == [
        "issuing_error",
        "sales_return",
        "service_stopped",
        "sales_discount",
    ]
    assert re.search(r'<option value="issuing_error" selected>', select)
    assert "Sales return (销货退回)" in select


@pytest.mark.parametrize("code", ReversalReason.values)
def test_r3_the_chosen_reason_code_is_stored_on_the_return(client_in, invoice, code):
    response = client_in.post(
        reverse("billing:refund", args=[invoice.pk]), refund_post(reason_code=code)
    )
    assert response.status_code == 302
    assert ReturnRequest.objects.get(invoice=invoice).reason_code == code


@pytest.mark.parametrize("code", ["", "refund_everything"], ids=["missing", "unknown"])
def test_r3_a_bad_reason_code_is_refused_with_a_message_and_keeps_what_was_entered(
    client_in, invoice, code
):
    response = client_in.post(
        reverse("billing:refund", args=[invoice.pk]),
        refund_post(reason_code=code, problem="amount", reason="Amount is 10 too high")
        | {"courier": "SF Express", "tracking_number": "SF77"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Choose the reason code for the tax system." in page
    assert "Amount is 10 too high" in page
    assert 'value="SF Express"' in page
    assert 'value="SF77"' in page
    assert response.context["form"]["problem"].value() == "amount"
    assert not ReturnRequest.objects.exists()


def test_r3_the_return_page_shows_the_reason_code(client_in, invoice):
    rr = submit(invoice, reason_code=ReversalReason.SERVICE_STOPPED)
    page = text(detail(client_in, rr).content.decode())
    assert "Reason code Service stopped (服务中止)" in page


# --- R3: the red-letter information form number ----------------------------------------------


def certified_post(number: str, **overrides) -> dict:
    return (
        refund_post(
            problem="type",
            reason="Should be ordinary",
            certified="yes",
            red_letter_form=SimpleUploadedFile("scan.png", png_bytes(), "image/png"),
            red_letter_form_number=number,
        )
        | overrides
    )


def test_r3_a_form_number_typed_with_spaces_is_kept_as_its_16_digits(client_in, special_invoice):
    response = client_in.post(
        reverse("billing:refund", args=[special_invoice.pk]),
        certified_post(" 4403 0123 4567 8901 "),
    )
    assert response.status_code == 302
    rr = ReturnRequest.objects.get(invoice=special_invoice)
    assert rr.red_letter_forms.get().form_number == "4403012345678901"


@pytest.mark.parametrize(
    "number",
    ["440301234567890", "44030123456789012", "4403-0123-4567-8901", "44O3012345678901"],
    ids=["15-digits", "17-digits", "dashes", "letter-O"],
)
def test_r3_a_form_number_that_is_not_16_digits_is_refused_next_to_its_field(
    client_in, special_invoice, number
):
    response = client_in.post(
        reverse("billing:refund", args=[special_invoice.pk]), certified_post(number)
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors["red_letter_form_number"] == [
        "The red-letter information form number is the 16 digits the tax system gave."
    ]
    assert "red_letter_form" not in form.errors
    assert f'value="{number}"' in response.content.decode()
    assert not ReturnRequest.objects.exists()


def test_r3_a_replacement_form_number_that_is_not_16_digits_is_refused_next_to_its_field(
    client_in, special_invoice
):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403012345678901",
    )
    response = client_in.post(
        reverse("billing:return_form_upload", args=[rr.pk]),
        {"upload": pdf_upload(), "form_number": "12345"},
    )
    assert response.status_code == 400
    errors = response.context["upload_form"].errors
    assert errors["form_number"] == [
        "The red-letter information form number is the 16 digits the tax system gave."
    ]
    assert rr.red_letter_forms.get().form_number == "4403012345678901"


# --- R4: what a certified special invoice sends back ------------------------------------------


def test_r4_the_special_refund_form_says_certified_invoices_are_not_mailed(
    client_in, special_invoice
):
    page = client_in.get(reverse("billing:refund", args=[special_invoice.pk])).content.decode()
    certified = text(element(page, "section", 'data-when-certified="yes"'))
    assert "Certified: do not mail the invoice" in certified
    assert "red-letter information form the buyer filed in the tax system" in certified
    assert "16-digit number" in certified
    assert "Invoice Returns Desk" not in certified
    assert "Red-letter information form number" in certified


def test_r4_the_special_refund_form_gives_the_mailing_address_when_not_certified(
    client_in, special_invoice
):
    page = client_in.get(reverse("billing:refund", args=[special_invoice.pk])).content.decode()
    uncertified = text(element(page, "section", 'data-when-certified="no"'))
    assert "Invoice Returns Desk" in uncertified
    assert "311121" in uncertified
    assert "Return the invoice form and the deduction form, complete and undamaged." in (
        uncertified
    )
    assert "Tracking number" in uncertified
    assert "red-letter" not in uncertified


def test_r4_the_ordinary_refund_form_always_gives_the_mailing_address(client_in, invoice):
    page = client_in.get(reverse("billing:refund", args=[invoice.pk])).content.decode()
    assert "data-when-certified" not in page
    mailing = text(element(page, "section", 'class="notice"'))
    assert "Invoice Returns Desk" in mailing
    assert "Return the invoice form, complete and undamaged." in mailing


def test_r4_a_certified_return_page_asks_for_no_paper(client_in, special_invoice):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403012345678901",
    )
    response = detail(client_in, rr)
    page = text(response.content.decode())
    assert "Do not mail the invoice" in page
    assert "How you sent the paper" not in page
    steps = steps_of(response)
    assert steps["received"].skipped
    assert not steps["form"].skipped
    assert steps["form"].current


def test_r4_an_uncertified_return_page_asks_for_the_paper(client_in, special_invoice):
    rr = submit(special_invoice, certified=False)
    response = detail(client_in, rr)
    assert "How you sent the paper" in response.content.decode()
    steps = steps_of(response)
    assert steps["received"].current
    assert steps["form"].skipped


# --- Awaiting the tax system (manual backend) ---------------------------------------------------


@pytest.mark.usefixtures("manual_tax_system")
def test_r6_a_void_awaiting_the_tax_system_says_what_happens_next(
    client_in, invoice, finance, django_capture_on_commit_callbacks
):
    rr = complete_return(submit(invoice), finance, django_capture_on_commit_callbacks)
    assert rr.state == ReturnState.AWAITING_TAX
    page = detail(client_in, rr).content.decode()
    status = text(element(page, "section", "data-outcome"))
    assert "Awaiting the tax system" in status
    assert "Next, our finance team voids this invoice in the tax system" in status
    assert f"¥{TOTAL} becomes invoiceable again and we tell you by SMS" in status
    assert "Until then the invoice remains valid." in status


@pytest.mark.usefixtures("manual_tax_system")
def test_r6_a_reversal_awaiting_the_tax_system_says_a_red_letter_invoice_comes_next(
    client_in, customer, finance, django_capture_on_commit_callbacks
):
    invoice = earlier_month_invoice(customer)
    rr = complete_return(submit(invoice), finance, django_capture_on_commit_callbacks)
    status = text(element(detail(client_in, rr).content.decode(), "section", "data-outcome"))
    assert "Next, our finance team issues a red-letter invoice in the tax system" in status


@pytest.mark.usefixtures("manual_tax_system")
def test_r8_nothing_says_returned_while_awaiting_the_tax_system(
    client_in, invoice, finance, django_capture_on_commit_callbacks
):
    rr = complete_return(submit(invoice), finance, django_capture_on_commit_callbacks)
    response = detail(client_in, rr)
    page = text(response.content.decode())
    for claim in ("Completed", "Voided in the tax system", "is invoiceable again"):
        assert claim not in page
    steps = steps_of(response)
    assert steps["outcome"].current
    assert not steps["outcome"].done
    assert steps["outcome"].label == "Voided or reversed in the tax system"
    assert steps["outcome"].note == "Waiting for the tax system"
    assert not steps["sms"].done
    listing = client_in.get("/billing/invoices/").content.decode()
    row = text(element(listing, "tr", f'data-invoice="{invoice.pk}"'))
    assert "Issued" in row
    assert "Return in progress" in row


@pytest.mark.usefixtures("manual_tax_system")
def test_r7_finance_recording_the_red_letter_invoice_shows_it_on_the_return_page(
    client_in, customer, finance, django_capture_on_commit_callbacks
):
    invoice = earlier_month_invoice(customer)
    rr = complete_return(submit(invoice), finance, django_capture_on_commit_callbacks)
    today = timezone.now().astimezone(SHANGHAI).date()
    with django_capture_on_commit_callbacks(execute=True):
        return_request_record_outcome(
            return_request_id=rr.pk,
            result=TaxResult.reversed(
                rr.tax_request.serial,
                RedLetterIssued(
                    code="044031900111",
                    number="00012345",
                    issued_on=today,
                    amount=Decimal("-943.40"),
                    tax_rate=Decimal("0.060"),
                    tax=Decimal("-56.60"),
                    total=Decimal("-1000.00"),
                ),
            ),
            actor=Actor.for_user(finance),
        )
    page = text(element(detail(client_in, rr).content.decode(), "section", "data-outcome"))
    assert "Red-letter invoice code and number 044031900111 00012345" in page
    assert f"Issue date {today:%Y-%m-%d}" in page
    assert "Amount before tax ¥-943.40 Tax rate 6% Tax ¥-56.60 Total (tax included) ¥-1,000.00" in (
        page
    )
    assert "Red-letter information form number" not in page


# --- Completed (sandbox backend) -----------------------------------------------------------


def test_r7_a_completed_void_shows_the_date_it_was_voided_in_the_tax_system(
    client_in, invoice, finance, django_capture_on_commit_callbacks
):
    rr = complete_return(submit(invoice), finance, django_capture_on_commit_callbacks)
    assert rr.state == ReturnState.COMPLETED
    voided_on = rr.tax_request.voided_on
    response = detail(client_in, rr)
    status = text(element(response.content.decode(), "section", "data-outcome"))
    assert f"This invoice was voided in the tax system on {voided_on:%Y-%m-%d}." in status
    assert f"¥{TOTAL} is invoiceable again." in status
    assert "Red-letter" not in status
    assert steps_of(response)["outcome"].label == "Voided in the tax system"


def test_r7_a_completed_reversal_shows_the_red_letter_invoice_and_its_negative_figures(
    client_in, customer, finance, django_capture_on_commit_callbacks
):
    invoice = earlier_month_invoice(customer)
    rr = complete_return(submit(invoice), finance, django_capture_on_commit_callbacks)
    assert rr.state == ReturnState.COMPLETED
    red = invoice.red_letter_invoice
    response = detail(client_in, rr)
    status = text(element(response.content.decode(), "section", "data-outcome"))
    assert "This invoice was reversed by a red-letter invoice issued in the tax system." in status
    assert f"Red-letter invoice code and number {red.code} {red.number}" in status
    assert f"Issue date {red.issued_on:%Y-%m-%d}" in status
    assert (
        f"Amount before tax ¥-{AMOUNT} Tax rate 6% Tax ¥-{TAX} Total (tax included) ¥-{TOTAL}"
        in status
    )
    assert "Red-letter information form number" not in status  # an ordinary invoice has none
    assert steps_of(response)["outcome"].label == "Reversed in the tax system"


def test_r7_a_reversed_special_invoice_shows_the_red_letter_information_form_number(
    client_in, customer, finance, django_capture_on_commit_callbacks
):
    invoice = earlier_month_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    rr = complete_return(
        submit(invoice, certified=False), finance, django_capture_on_commit_callbacks
    )
    assert rr.state == ReturnState.COMPLETED
    form_number = invoice.red_letter_invoice.red_letter_form_number
    assert len(form_number) == 16  # the seller filed it; the sandbox gave its number
    status = text(element(detail(client_in, rr).content.decode(), "section", "data-outcome"))
    assert f"Red-letter information form number {form_number}" in status


def test_r11_a_completed_return_has_every_step_done_including_the_tax_system(
    client_in, invoice, finance, django_capture_on_commit_callbacks
):
    rr = complete_return(submit(invoice), finance, django_capture_on_commit_callbacks)
    steps = steps_of(detail(client_in, rr))
    assert [key for key, step in steps.items() if step.done] == [
        "submitted",
        "received",
        "outcome",
        "sms",
    ]
    assert not any(step.current or step.stopped for step in steps.values())


def test_r11_a_completed_return_without_a_mobile_number_skips_the_sms_step(
    client, finance, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(mobile="")
    invoice = issue_invoice(customer)
    client.force_login(customer.user)
    rr = complete_return(submit(invoice), finance, django_capture_on_commit_callbacks)
    assert not SmsMessage.objects.filter(related_return_id=rr.pk).exists()
    sms = steps_of(detail(client, rr))["sms"]
    assert (sms.done, sms.skipped, sms.note) == (False, True, "No mobile number")


def test_r11_an_sms_that_failed_is_not_shown_as_sent(
    client_in, invoice, finance, django_capture_on_commit_callbacks
):
    rr = complete_return(submit(invoice), finance, django_capture_on_commit_callbacks)
    SmsMessage.objects.filter(related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED).update(
        status="failed"
    )
    sms = steps_of(detail(client_in, rr))["sms"]
    assert (sms.done, sms.stopped, sms.note) == (False, True, "Could not be sent")


# --- The other end states ----------------------------------------------------------------


def test_r11_a_failed_return_says_finance_is_looking_into_it_not_that_it_is_done(
    client_in, invoice, finance, settings, django_capture_on_commit_callbacks
):
    settings.TAX_SANDBOX_FAIL = "permanent"
    rr = complete_return(submit(invoice), finance, django_capture_on_commit_callbacks)
    assert rr.state == ReturnState.FAILED
    response = detail(client_in, rr)
    page = text(response.content.decode())
    assert "Processing is delayed; our finance team is looking into it." in page
    assert "The invoice has not been voided or reversed yet." in page
    assert "invoiceable again" not in page
    steps = steps_of(response)
    assert (steps["outcome"].done, steps["outcome"].stopped) == (False, True)
    assert steps["outcome"].note == "Delayed: finance is looking into it"
    assert not steps["sms"].done
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.ISSUED


def test_r5_a_return_rejected_for_incomplete_paper_says_the_paper_came_then_the_rejection(
    client_in, invoice, finance
):
    rr = submit(invoice)
    receipt = log_paper(invoice, finance, complete=False).receipt
    steps = steps_of(detail(client_in, rr))
    # The paper was received (incomplete): the bar says so, then where the return ended.
    assert list(steps) == ["submitted", "received", "ended"]
    assert (steps["received"].done, steps["received"].at) == (True, receipt.received_at)
    assert steps["received"].note == "Incomplete"
    assert (steps["ended"].label, steps["ended"].stopped) == ("Rejected", True)
    assert steps["ended"].at is not None
    assert not any(step.current for step in steps.values())


def test_r9_a_cancelled_return_stops_the_progress_bar_where_it_was_cancelled(client_in, invoice):
    from returns.services import return_request_cancel

    rr = submit(invoice)
    return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(invoice.customer.user))
    steps = steps_of(detail(client_in, rr))
    # Nothing after the cancellation will happen: the bar ends there, with when.
    assert list(steps) == ["submitted", "ended"]
    assert (steps["ended"].label, steps["ended"].stopped) == ("Cancelled", True)
    assert steps["ended"].at is not None
    assert not any(step.current for step in steps.values())


# --- Query counts ------------------------------------------------------------------------------


def test_the_return_page_reads_a_completed_reversal_in_as_many_queries_as_a_submitted_return(
    client_in, customer, finance, django_capture_on_commit_callbacks, django_assert_num_queries
):
    waiting = submit(issue_invoice(customer))
    reversed_ = complete_return(
        submit(earlier_month_invoice(customer)), finance, django_capture_on_commit_callbacks
    )
    with CaptureQueriesContext(connection) as submitted_queries:
        assert detail(client_in, waiting).status_code == 200
    with django_assert_num_queries(len(submitted_queries)):
        assert detail(client_in, reversed_).status_code == 200
