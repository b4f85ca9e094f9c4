"""The back office for digital invoices (数电票), manual tax-system backend: finance records the
digital invoices it issued on the e-tax platform, and works their reversals from the queue
"To do in the tax system": a red-letter confirmation form entered (and, when the buyer booked
the invoice, confirmed by the buyer within 72 hours), then the red-letter invoice; or the
buyer's refusal, or the form's lapse. Driven with the Django test client as finance staff."""

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from invoices.models import (
    ApplicationState,
    BuyerDecision,
    Invoice,
    InvoiceApplication,
    InvoiceMedium,
    InvoiceState,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
    RedLetterInvoice,
    ReversalReason,
    TaxRequest,
    TaxRequestState,
)
from invoices.rules import tax_request_awaits_confirmation_form, tax_request_form_has_lapsed
from invoices.services import DOCUMENT_MAX_BYTES, invoice_application_create
from invoices.taxsystem.services import local_minute
from invoices.workdays import business_tz
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnRequest, ReturnState
from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF
from returns.selectors import tax_form_lapsed_condition
from returns.services import return_request_await_buyer
from tests.factories import (
    DIGITAL_INVOICE_PDF,
    VALID_USCC,
    CustomerFactory,
    fund,
    issue_digital_invoice,
    issue_invoice,
    mailing_fields,
    staff_in_role,
)
from tests.returns_helpers import submit

pytestmark = pytest.mark.django_db

QUEUE_URL = "/admin/invoices/taxrequest/?state__exact=pending"
AWAITING_URL = "/admin/invoices/taxrequest/?state__exact=awaiting_buyer"
CONFIRMATION_FORM = "44030026110000123456"  # a red-letter confirmation form: 20 digits
BUYERS_FORM = "44030026110000654321"
RED_NUMBER = "26330000009999999901"  # a digital red-letter invoice: 20 digits, no code


@pytest.fixture(autouse=True)
def manual_backend(settings):
    settings.TAX_SYSTEM_BACKEND = "manual"


@pytest.fixture
def finance(db):
    return staff_in_role(FINANCE_STAFF, username="fin")


@pytest.fixture
def finance_client(client, finance):
    client.force_login(finance)
    return client


@pytest.fixture
def reviewer_client(client):
    client.force_login(staff_in_role(ADMIN_REVIEWERS, username="rev"))
    return client


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def row_of(response, text: str) -> str:
    """The one table row holding ``text``, with its HTML."""
    rows = re.findall(r"<tr[^>]*>.*?</tr>", page_text(response), flags=re.DOTALL)
    matching = [row for row in rows if text in row]
    assert len(matching) == 1, f"{text} is in {len(matching)} rows"
    return matching[0]


def today() -> dt.date:
    return timezone.localdate(timezone=business_tz())


def record_url(tax_request: TaxRequest) -> str:
    return f"/admin/invoices/taxrequest/{tax_request.pk}/record/"


def confirmation_form_url(tax_request: TaxRequest) -> str:
    return f"/admin/invoices/taxrequest/{tax_request.pk}/confirmation-form/"


def digital_return(customer, callbacks, *, special: bool = False, **submit_kwargs):
    """A digital invoice returned by its customer: no paper, so it is at once in the tax
    system's queue (awaiting the tax system). ``buyer_booked`` / ``buyer_form_number`` say
    what the customer answered."""
    kind = InvoiceType.SPECIAL if special else InvoiceType.ORDINARY
    invoice = issue_digital_invoice(customer, invoice_type=kind)
    submit_kwargs.setdefault("reason_code", ReversalReason.ISSUING_ERROR)
    with callbacks(execute=True):
        rr = submit(invoice, **submit_kwargs)
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_TAX
    return rr


def awaiting_buyer(customer, callbacks, *, form: str = CONFIRMATION_FORM) -> ReturnRequest:
    """A booked digital invoice whose confirmation form finance entered: awaiting the buyer."""
    rr = digital_return(customer, callbacks, special=True, buyer_booked=True)
    with callbacks(execute=True):
        return_request_await_buyer(return_request_id=rr.pk, form_number=form)
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER
    return rr


def set_deadline(rr: ReturnRequest, confirm_by: dt.datetime) -> TaxRequest:
    TaxRequest.objects.filter(pk=rr.tax_request_id).update(confirm_by=confirm_by)
    return TaxRequest.objects.get(pk=rr.tax_request_id)


def red_letter_post(invoice: Invoice, **overrides) -> dict[str, str]:
    """What a clerk types for the digital red-letter invoice of ``invoice``, issued today."""
    return {
        "number": RED_NUMBER,
        "issued_on": today().isoformat(),
        "amount": str(-invoice.amount),
        "tax": str(-invoice.tax),
        "total": str(-invoice.total),
    } | overrides


def credits_of(invoice: Invoice):
    return LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED)


def sms_of(rr: ReturnRequest, purpose: str):
    return SmsMessage.objects.filter(related_return_id=rr.pk, purpose=purpose)


# --- issuing a digital invoice by hand -------------------------------------------------------


def digital_application(customer, **kwargs) -> InvoiceApplication:
    fund(customer, "1000.00")
    fields = {
        "customer_id": customer.pk,
        "invoice_type": InvoiceType.ORDINARY,
        "medium": InvoiceMedium.DIGITAL,
        "title": customer.name,
        "amount": "1000.00",
        "taxpayer_id": VALID_USCC,
        "mailing_recipient": "",
        "mailing_phone": "",
        "mailing_address": "",
    } | kwargs
    return invoice_application_create(**fields)


def issue_url(application: InvoiceApplication) -> str:
    return reverse("admin:invoices_invoiceapplication_issue", args=[application.pk])


def pdf(name: str = "invoice.pdf", content: bytes = DIGITAL_INVOICE_PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def test_the_applications_to_issue_show_the_kind_and_where_a_digital_invoice_goes(
    finance_client, customer
):
    digital = digital_application(customer, email="fapiao@example.com")
    fund(customer, "500.00")
    paper = invoice_application_create(
        customer_id=customer.pk,
        invoice_type=InvoiceType.SPECIAL,
        title=customer.name,
        amount="500.00",
        taxpayer_id=VALID_USCC,
        registered_address="1 Example Road",
        registered_phone="0571-88888888",
        bank_name="Bank of Hangzhou",
        bank_account="6222020200112233445",
        **mailing_fields(),
    )
    listing = finance_client.get("/admin/invoices/invoiceapplication/?state__exact=pending")
    digital_row = row_of(listing, issue_url(digital))
    assert "Digital invoice (ordinary invoice)" in digital_row
    assert "fapiao@example.com" in digital_row
    paper_row = row_of(listing, issue_url(paper))
    assert "Paper VAT special invoice" in paper_row
    assert "Li Lei" in paper_row  # the recipient it is mailed to
    only_digital = page_text(
        finance_client.get("/admin/invoices/invoiceapplication/?medium__exact=digital")
    )
    assert issue_url(digital) in only_digital
    assert issue_url(paper) not in only_digital


def test_finance_records_a_digital_invoice_with_its_number_and_file_and_it_is_emailed(
    finance_client, finance, customer, django_capture_on_commit_callbacks
):
    application = digital_application(customer, email="fapiao@example.com")
    page = page_text(finance_client.get(issue_url(application)))
    assert 'enctype="multipart/form-data"' in page
    assert ">Invoice number:</label>" in page
    assert ">Invoice file:</label>" in page
    for paper_only in ("Invoice code and number", "Courier", "Tracking number", "Mail to"):
        assert paper_only not in page, paper_only
    assert "fapiao@example.com" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = finance_client.post(
            issue_url(application),
            # Copied from the platform with spaces; the file's own name is not kept.
            {"number": "2633 2000 0000 0000 0042", "document": pdf("下载.PDF")},
            follow=True,
        )

    assert messages_of(response) == [
        f"Digital invoice 26332000000000000042 recorded for application #{application.pk}: "
        "the customer can download it, and it is emailed to fapiao@example.com."
    ]
    application.refresh_from_db()
    assert application.state == ApplicationState.ISSUED
    invoice = Invoice.objects.get(application=application)
    assert (invoice.medium, invoice.code, invoice.number) == ("digital", "", "26332000000000000042")
    assert (invoice.courier, invoice.tracking_number) == ("", "")
    assert invoice.document.name.endswith("26332000000000000042.pdf")
    with invoice.document.open("rb") as handle:
        assert handle.read() == DIGITAL_INVOICE_PDF
    assert [m.to for m in mail.outbox] == [["fapiao@example.com"]]
    assert LogEntry.objects.get(object_id=str(invoice.pk)).user == finance
    # Returnable like any invoice the provider issued (R1); nothing to mail, so it goes on.
    assert submit(invoice, buyer_booked=False).state == ReturnState.PROCESSING


@pytest.mark.parametrize(
    ("number", "upload", "message"),
    [
        ("12345678", pdf(), "A digital invoice has one 20-digit number and no code."),
        ("2633200000000000004A", pdf(), "A digital invoice has one 20-digit number and no code."),
        ("26332000000000000042", None, "Attach the digital invoice's file (PDF or OFD)."),
        (
            "26332000000000000042",
            pdf("invoice.pdf", b"MZ\x90\x00 not a pdf"),
            "The invoice file must be a PDF or an OFD file.",
        ),
        (
            "26332000000000000042",
            pdf("invoice.exe"),
            "The invoice file must be a PDF or an OFD file.",
        ),
        (
            "26332000000000000042",
            pdf("big.pdf", DIGITAL_INVOICE_PDF + b"0" * DOCUMENT_MAX_BYTES),
            "The invoice file is larger than 10 MB.",
        ),
    ],
    ids=["short-number", "letter-in-number", "no-file", "not-a-pdf", "wrong-extension", "too-big"],
)
def test_a_bad_digital_invoice_entry_is_refused_with_why_and_what_was_typed_is_kept(
    finance_client, customer, number, upload, message
):
    application = digital_application(customer)
    data: dict[str, object] = {"number": number}
    if upload is not None:
        data["document"] = upload

    response = finance_client.post(issue_url(application), data)

    assert response.status_code == 200
    text = page_text(response)
    assert message in text
    assert f'name="number" value="{number}"' in text  # nothing typed is lost
    assert "choose the file again" in text  # a browser never keeps a chosen file
    application.refresh_from_db()
    assert application.state == ApplicationState.PENDING
    assert not Invoice.objects.filter(application=application).exists()


def test_a_digital_number_already_recorded_is_refused(finance_client, customer):
    existing = issue_digital_invoice(customer)
    application = digital_application(customer)
    response = finance_client.post(
        issue_url(application), {"number": existing.number, "document": pdf()}
    )
    assert f"Invoice  {existing.number} already exists." in page_text(response)
    application.refresh_from_db()
    assert application.state == ApplicationState.PENDING


def test_a_paper_application_still_asks_code_number_and_courier(finance_client, customer):
    fund(customer, "500.00")
    application = invoice_application_create(
        customer_id=customer.pk,
        invoice_type=InvoiceType.ORDINARY,
        title=customer.name,
        amount="500.00",
        taxpayer_id=VALID_USCC,
        **mailing_fields(),
    )
    page = page_text(finance_client.get(issue_url(application)))
    for label in ("Invoice code and number", "Courier", "Tracking number"):
        assert f">{label}:</label>" in page, label
    assert "Invoice file" not in page
    assert "multipart" not in page


def test_a_reviewer_cannot_record_a_digital_invoice(reviewer_client, customer):
    application = digital_application(customer)
    assert reviewer_client.get(issue_url(application)).status_code == 403
    response = reviewer_client.post(
        issue_url(application), {"number": "26332000000000000042", "document": pdf()}
    )
    assert response.status_code == 403
    assert not Invoice.objects.filter(application=application).exists()


def test_the_invoice_list_filters_by_medium_and_shows_a_digital_number_without_a_code(
    finance_client, customer
):
    digital = issue_digital_invoice(customer)
    paper = issue_invoice(customer)
    listing = finance_client.get("/admin/invoices/invoice/")
    digital_row = row_of(listing, digital.number)
    assert f">{digital.number}</a>" in digital_row  # the number alone, no code before it
    assert "Digital invoice (ordinary invoice)" in digital_row
    assert f">{paper.code} {paper.number}</a>" in row_of(listing, paper.number)
    only_digital = page_text(finance_client.get("/admin/invoices/invoice/?medium__exact=digital"))
    assert digital.number in only_digital
    assert paper.number not in only_digital


# --- the returns list and a return's page ----------------------------------------------------


def test_digital_returns_have_their_own_filter_and_the_state_filter_has_awaiting_the_buyer(
    finance_client, customer, django_capture_on_commit_callbacks
):
    waiting = awaiting_buyer(customer, django_capture_on_commit_callbacks)
    paper_invoice = issue_invoice(customer)
    paper = submit(paper_invoice)
    base = "/admin/returns/returnrequest/"
    listing = page_text(finance_client.get(base))
    assert '<a href="?state__exact=awaiting_buyer">Awaiting buyer confirmation</a>' in listing
    assert '<a href="?medium__exact=digital">Digital</a>' in listing

    def ids(query: str) -> set[int]:
        response = finance_client.get(base + query)
        return {rr.pk for rr in (waiting, paper) if f"{base}{rr.pk}/change/" in page_text(response)}

    assert ids("?medium__exact=digital") == {waiting.pk}
    assert ids("?medium__exact=paper") == {paper.pk}
    assert ids("?state__exact=awaiting_buyer") == {waiting.pk}
    row = row_of(finance_client.get(base), f"{base}{waiting.pk}/change/")
    assert "Digital invoice (VAT special invoice)" in row
    assert f'<td class="field-invoice_code_and_number">{waiting.invoice.number}</td>' in row


def test_a_digital_returns_page_shows_its_confirmation_form_with_the_deadline_and_time_left(
    finance_client, customer, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(customer, django_capture_on_commit_callbacks)
    deadline = timezone.now() + dt.timedelta(days=1, hours=3, minutes=30)
    set_deadline(rr, deadline)
    page = page_text(finance_client.get(f"/admin/returns/returnrequest/{rr.pk}/change/"))
    assert f"{CONFIRMATION_FORM} (entered by the provider)" in page
    assert f"confirm by {local_minute(deadline)} (Beijing time)" in page
    assert "1\xa0day, 3\xa0hours left" in page
    assert "Booked or use confirmed" in page
    for paper_only in ("Courier:", "Tracking number:", "Mail receipt:", "Certified:"):
        assert paper_only not in page, paper_only


# --- the queue "To do in the tax system": what to do, in words --------------------------------


def test_the_queue_says_what_to_do_for_each_kind_of_digital_reversal(
    finance_client, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    never_booked = digital_return(CustomerFactory(), capture, buyer_booked=False)
    buyers_form = digital_return(
        CustomerFactory(), capture, special=True, buyer_form_number=BUYERS_FORM
    )
    booked = digital_return(CustomerFactory(), capture, special=True, buyer_booked=True)
    lapsed = awaiting_buyer(CustomerFactory(), capture)
    set_deadline(lapsed, timezone.now() - dt.timedelta(minutes=1))

    queue = finance_client.get(QUEUE_URL)

    row = row_of(queue, never_booked.tax_request.serial)
    assert (
        "Enter the red-letter confirmation form and issue the red-letter invoice: the buyer "
        "has not booked the invoice, so no confirmation is needed." in row
    )
    assert f'<span class="nowrap">{never_booked.invoice.number}</span>' in row  # no code
    assert "Digital invoice (ordinary invoice)" in row
    assert "Entered by the provider: enter its number with the outcome" in row
    assert f'href="{record_url(never_booked.tax_request)}">Record outcome<' in row

    row = row_of(queue, buyers_form.tax_request.serial)
    assert (
        "Confirm the red-letter confirmation form the buyer entered and issue the red-letter "
        "invoice." in row
    )
    assert BUYERS_FORM in row
    assert "entered by the buyer" in row
    assert f'href="{record_url(buyers_form.tax_request)}">Record outcome<' in row

    row = row_of(queue, booked.tax_request.serial)
    assert (
        "Enter the red-letter confirmation form; the buyer must confirm it within 72 hours." in row
    )
    assert (
        f'href="{confirmation_form_url(booked.tax_request)}">Record the confirmation form<' in row
    )
    assert "Record outcome" not in row

    row = row_of(queue, lapsed.tax_request.serial)
    assert "Deadline passed: check the platform and record the outcome." in row
    assert CONFIRMATION_FORM in row
    assert f'href="{record_url(lapsed.tax_request)}">Record outcome<' in row


def test_a_form_awaiting_the_buyer_shows_its_deadline_in_beijing_time_and_the_time_left(
    finance_client, customer, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(customer, django_capture_on_commit_callbacks)
    deadline = timezone.now() + dt.timedelta(days=2, hours=5, minutes=30)
    tax_request = set_deadline(rr, deadline)

    waiting = finance_client.get(AWAITING_URL)

    assert "<h1>Red-letter confirmation forms awaiting the buyer</h1>" in page_text(waiting)
    row = row_of(waiting, tax_request.serial)
    assert CONFIRMATION_FORM in row
    assert f"confirm by {local_minute(deadline)} (Beijing time)" in row
    assert deadline.astimezone(business_tz()).strftime("%Y-%m-%d %H:%M") in row
    assert "2\xa0days, 5\xa0hours left" in row
    assert "record the outcome when it has confirmed or refused" in row
    # Not a to-do yet: the buyer has time.
    assert tax_request.serial not in page_text(finance_client.get(QUEUE_URL))


def test_lapsed_forms_are_flagged_and_listed_first_in_the_to_do_queue(
    finance_client, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    older_pending = digital_return(CustomerFactory(), capture, buyer_booked=False)
    TaxRequest.objects.filter(pk=older_pending.tax_request_id).update(
        created_at=timezone.now() - dt.timedelta(days=5)
    )
    lapsed = awaiting_buyer(CustomerFactory(), capture)
    set_deadline(lapsed, timezone.now() - dt.timedelta(hours=1))
    still_open = awaiting_buyer(CustomerFactory(), capture, form=BUYERS_FORM)

    to_do = page_text(finance_client.get(QUEUE_URL))

    assert to_do.index(lapsed.tax_request.serial) < to_do.index(older_pending.tax_request.serial)
    assert still_open.tax_request.serial not in to_do
    row = row_of(finance_client.get(QUEUE_URL), lapsed.tax_request.serial)
    assert '<strong class="lapsed">Deadline passed</strong>' in row
    # Among the forms awaiting the buyer, the lapsed one comes first too.
    waiting = page_text(finance_client.get(AWAITING_URL))
    assert waiting.index(lapsed.tax_request.serial) < waiting.index(still_open.tax_request.serial)


@pytest.mark.parametrize(
    "offset", [dt.timedelta(minutes=-1), dt.timedelta(0), dt.timedelta(minutes=1)]
)
def test_the_queues_sql_for_a_lapsed_form_agrees_with_the_rule(
    offset, customer, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(customer, django_capture_on_commit_callbacks)
    now = timezone.now()
    tax_request = set_deadline(rr, now + offset)
    in_sql = TaxRequest.objects.filter(tax_form_lapsed_condition(now=now), pk=tax_request.pk)
    assert in_sql.exists() == tax_request_form_has_lapsed(tax_request, now=now)


def test_the_rule_a_booked_digital_invoice_awaits_its_confirmation_form():
    def request(**fields) -> TaxRequest:
        values = {"medium": InvoiceMedium.DIGITAL, "state": TaxRequestState.PENDING} | fields
        return TaxRequest(**values)

    assert tax_request_awaits_confirmation_form(request(buyer_booked=True))
    assert not tax_request_awaits_confirmation_form(request(buyer_booked=False))
    assert not tax_request_awaits_confirmation_form(
        request(buyer_booked=True, buyer_entered_form=True, red_letter_form_number=BUYERS_FORM)
    )
    assert not tax_request_awaits_confirmation_form(
        request(
            buyer_booked=True,
            state=TaxRequestState.AWAITING_BUYER,
            red_letter_form_number=CONFIRMATION_FORM,
        )
    )
    assert not tax_request_awaits_confirmation_form(
        request(medium=InvoiceMedium.PAPER, buyer_booked=True)
    )


@pytest.mark.parametrize("count", [1, 24])
def test_the_queue_with_digital_requests_loads_in_a_fixed_number_of_queries(
    count, finance_client, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    capture = django_capture_on_commit_callbacks
    for index in range(count):
        customer = CustomerFactory()
        case = index % 4
        if case == 0:
            digital_return(customer, capture, buyer_booked=False)
        elif case == 1:
            digital_return(customer, capture, special=True, buyer_booked=True)
        elif case == 2:
            digital_return(customer, capture, special=True, buyer_form_number=f"{index:020d}")
        else:
            rr = awaiting_buyer(customer, capture, form=f"{index + 1:020d}")
            set_deadline(rr, timezone.now() - dt.timedelta(minutes=1))
    # Session, user, permissions (2), the two counts, the page: 7, whatever the length.
    with django_assert_max_num_queries(7):
        response = finance_client.get(QUEUE_URL)
    text = page_text(response)
    assert text.count(">Record outcome<") + text.count(">Record the confirmation form<") == count


# --- (b) recording the confirmation form: the return awaits the buyer ------------------------


def test_finance_records_the_confirmation_form_and_the_return_awaits_the_buyer(
    finance_client, finance, customer, django_capture_on_commit_callbacks
):
    rr = digital_return(
        customer, django_capture_on_commit_callbacks, special=True, buyer_booked=True
    )
    tax_request = rr.tax_request
    # Its red-letter invoice cannot be recorded yet: the record page sends to the form page.
    record_page = page_text(finance_client.get(record_url(tax_request)))
    assert (
        f'href="{confirmation_form_url(tax_request)}">Record the confirmation form<' in record_page
    )
    assert 'name="number"' not in record_page

    page = page_text(finance_client.get(confirmation_form_url(tax_request)))
    assert ">Red-letter confirmation form number:</label>" in page
    assert ">Entered at:</label>" in page
    entered = timezone.localtime(timezone.now(), business_tz()).replace(second=0, microsecond=0)

    with django_capture_on_commit_callbacks(execute=True):
        response = finance_client.post(
            confirmation_form_url(tax_request),
            {"form_number": "4403 0026 1100 0012 3456", "entered_at": f"{entered:%Y-%m-%dT%H:%M}"},
            follow=True,
        )

    deadline = entered + dt.timedelta(hours=72)
    assert response.redirect_chain[-1][0] == QUEUE_URL
    assert messages_of(response) == [
        f"Red-letter confirmation form {CONFIRMATION_FORM} recorded: return #{rr.pk} awaits the "
        f"buyer, who must confirm it by {deadline:%Y-%m-%d %H:%M} (Beijing time)."
    ]
    rr.refresh_from_db()
    tax_request.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER
    assert (tax_request.state, tax_request.red_letter_form_number, tax_request.confirm_by) == (
        TaxRequestState.AWAITING_BUYER,
        CONFIRMATION_FORM,
        deadline,
    )
    assert rr.events.get(to_state=ReturnState.AWAITING_BUYER).actor == finance
    [reminder] = sms_of(rr, SmsPurpose.BUYER_CONFIRMATION)
    assert CONFIRMATION_FORM in reminder.body
    assert not credits_of(rr.invoice).exists()
    # A double submit changes nothing and says so.
    again = finance_client.post(
        confirmation_form_url(tax_request),
        {"form_number": CONFIRMATION_FORM, "entered_at": f"{entered:%Y-%m-%dT%H:%M}"},
        follow=True,
    )
    assert "takes no confirmation form now: nothing was changed." in messages_of(again)[0]
    assert sms_of(rr, SmsPurpose.BUYER_CONFIRMATION).count() == 1


@pytest.mark.parametrize(
    ("form_number", "entered_at", "message"),
    [
        ("4403002611000012", None, "A red-letter confirmation form number is 20 digits"),
        (CONFIRMATION_FORM, dt.timedelta(hours=1), "not in the future"),
        (CONFIRMATION_FORM, dt.timedelta(days=-2), "after the request was opened"),
    ],
    ids=["paper-form-length", "in-the-future", "before-the-request"],
)
def test_a_bad_confirmation_form_entry_is_refused_with_why_and_kept(
    form_number, entered_at, message, finance_client, customer, django_capture_on_commit_callbacks
):
    rr = digital_return(
        customer, django_capture_on_commit_callbacks, special=True, buyer_booked=True
    )
    moment = timezone.localtime(timezone.now() + (entered_at or dt.timedelta(0)), business_tz())
    typed = {"form_number": form_number, "entered_at": f"{moment:%Y-%m-%dT%H:%M}"}

    response = finance_client.post(confirmation_form_url(rr.tax_request), typed)

    assert response.status_code == 200
    text = page_text(response)
    assert message in text
    for name, value in typed.items():
        assert f'name="{name}" value="{value}"' in text, name
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_TAX
    assert not sms_of(rr, SmsPurpose.BUYER_CONFIRMATION).exists()


# --- (c) the buyer's decision ----------------------------------------------------------------


def test_the_buyer_confirmed_finance_records_the_red_letter_invoice_and_the_return_completes(
    finance_client, finance, customer, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(customer, django_capture_on_commit_callbacks)
    invoice = rr.invoice
    page = page_text(finance_client.get(record_url(rr.tax_request)))
    assert "Confirmed: the platform issued the red-letter invoice" in page
    assert "Refused by the buyer" in page
    assert "the form lapsed" not in page  # the buyer still has time
    assert ">Red-letter invoice number:</label>" in page
    assert "Red-letter invoice code" not in page  # a digital red-letter invoice has none
    assert 'name="total" value="-1000.00"' in page  # pre-filled: the original's, negated

    with django_capture_on_commit_callbacks(execute=True):
        response = finance_client.post(
            record_url(rr.tax_request),
            {"decision": BuyerDecision.CONFIRMED} | red_letter_post(invoice),
            follow=True,
        )

    assert messages_of(response) == [
        f"Return #{rr.pk} completed: digital invoice {invoice.number} reversed by red-letter "
        f"invoice {RED_NUMBER} (red-letter confirmation form {CONFIRMATION_FORM})."
    ]
    rr.refresh_from_db()
    invoice.refresh_from_db()
    assert (rr.state, rr.outcome, invoice.state) == ("completed", "reversed", "reversed")
    red = RedLetterInvoice.objects.get(original=invoice)
    assert (red.medium, red.code, red.number, red.red_letter_form_number) == (
        "digital",
        "",
        RED_NUMBER,
        CONFIRMATION_FORM,
    )
    assert (red.amount, red.tax, red.total) == (
        Decimal("-943.40"),
        Decimal("-56.60"),
        Decimal("-1000.00"),
    )
    assert [c.amount for c in credits_of(invoice)] == [Decimal("1000.00")]
    [completed] = sms_of(rr, SmsPurpose.RETURN_COMPLETED)
    assert RED_NUMBER in completed.body
    tax_request = TaxRequest.objects.get(pk=rr.tax_request_id)
    assert (tax_request.buyer_decision, tax_request.recorded_by) == (
        BuyerDecision.CONFIRMED,
        finance,
    )


def test_a_confirmation_without_the_red_letter_invoice_is_refused_and_nothing_is_saved(
    finance_client, customer, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(customer, django_capture_on_commit_callbacks)
    response = finance_client.post(
        record_url(rr.tax_request),
        {"decision": BuyerDecision.CONFIRMED} | red_letter_post(rr.invoice, number=""),
    )
    assert "Required when the buyer confirmed" in page_text(response)
    wrong = finance_client.post(
        record_url(rr.tax_request),
        {"decision": BuyerDecision.CONFIRMED} | red_letter_post(rr.invoice, number="61000001"),
    )
    assert "A digital red-letter invoice number is 20 digits." in page_text(wrong)
    assert 'name="number" value="61000001"' in page_text(wrong)
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER
    assert not credits_of(rr.invoice).exists()


def test_the_buyer_refused_the_return_is_rejected_without_a_credit(
    finance_client, finance, customer, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(customer, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = finance_client.post(
            record_url(rr.tax_request),
            # The red-letter fields come pre-filled: a refusal ignores them.
            {"decision": BuyerDecision.REFUSED} | red_letter_post(rr.invoice, number=""),
            follow=True,
        )
    assert messages_of(response) == [
        f"Return #{rr.pk} rejected: the buyer refused red-letter confirmation form "
        f"{CONFIRMATION_FORM}. The invoice stays valid; the customer is told and may return "
        "it again."
    ]
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    assert "refused red-letter confirmation form" in rr.rejection_reason
    assert rr.invoice.state == InvoiceState.ISSUED
    assert not credits_of(rr.invoice).exists()
    assert not sms_of(rr, SmsPurpose.RETURN_COMPLETED).exists()
    assert not RedLetterInvoice.objects.filter(original=rr.invoice).exists()
    tax_request = TaxRequest.objects.get(pk=rr.tax_request_id)
    assert (tax_request.state, tax_request.buyer_decision) == ("refused", BuyerDecision.REFUSED)
    assert rr.events.get(to_state=ReturnState.REJECTED).actor == finance


def test_a_lapsed_form_is_recorded_by_finance_after_the_deadline_without_a_credit(
    finance_client, customer, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(customer, django_capture_on_commit_callbacks)
    set_deadline(rr, timezone.now() - dt.timedelta(minutes=5))
    page = page_text(finance_client.get(record_url(rr.tax_request)))
    assert "Not confirmed within 72 hours: the form lapsed" in page
    assert "确认即开票" in page  # check the platform first: a last-minute confirmation issues
    with django_capture_on_commit_callbacks(execute=True):
        response = finance_client.post(
            record_url(rr.tax_request), {"decision": BuyerDecision.EXPIRED}, follow=True
        )
    assert messages_of(response) == [
        f"Return #{rr.pk} rejected: red-letter confirmation form {CONFIRMATION_FORM} lapsed "
        "unconfirmed. The invoice stays valid; the customer is told and may return it again."
    ]
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    assert "not confirmed within 72 hours" in rr.rejection_reason
    assert not credits_of(rr.invoice).exists()
    assert not sms_of(rr, SmsPurpose.RETURN_COMPLETED).exists()
    assert TaxRequest.objects.get(pk=rr.tax_request_id).buyer_decision == BuyerDecision.EXPIRED


def test_a_lapse_cannot_be_recorded_before_the_deadline(
    finance_client, customer, django_capture_on_commit_callbacks
):
    rr = awaiting_buyer(customer, django_capture_on_commit_callbacks)
    response = finance_client.post(record_url(rr.tax_request), {"decision": BuyerDecision.EXPIRED})
    assert response.status_code == 200
    assert "Select a valid choice." in page_text(response)
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER
    assert TaxRequest.objects.get(pk=rr.tax_request_id).state == TaxRequestState.AWAITING_BUYER


def test_a_lapsed_form_the_buyer_confirmed_at_the_last_minute_is_recorded_as_confirmed(
    finance_client, customer, django_capture_on_commit_callbacks
):
    """Nothing lapses by itself with the manual backend: finance found the red-letter invoice
    on the platform, so the return completes."""
    rr = awaiting_buyer(customer, django_capture_on_commit_callbacks)
    set_deadline(rr, timezone.now() - dt.timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        finance_client.post(
            record_url(rr.tax_request),
            {"decision": BuyerDecision.CONFIRMED} | red_letter_post(rr.invoice),
        )
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    assert credits_of(rr.invoice).count() == 1
    assert sms_of(rr, SmsPurpose.RETURN_COMPLETED).count() == 1


# --- (a) no buyer confirmation: the form and the red-letter invoice at once --------------------


def test_a_never_booked_digital_invoice_is_recorded_with_the_form_entered_and_its_red_letter(
    finance_client, customer, django_capture_on_commit_callbacks
):
    rr = digital_return(customer, django_capture_on_commit_callbacks, buyer_booked=False)
    page = page_text(finance_client.get(record_url(rr.tax_request)))
    assert ">Red-letter confirmation form number:</label>" in page
    assert "Red-letter invoice code" not in page
    assert "The buyer's decision" not in page

    missing = finance_client.post(record_url(rr.tax_request), red_letter_post(rr.invoice))
    assert "Enter the 20-digit number of the red-letter confirmation form entered." in page_text(
        missing
    )
    with django_capture_on_commit_callbacks(execute=True):
        finance_client.post(
            record_url(rr.tax_request),
            red_letter_post(rr.invoice, red_letter_form_number=CONFIRMATION_FORM),
        )

    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    red = RedLetterInvoice.objects.get(original=rr.invoice)
    assert (red.code, red.number, red.red_letter_form_number) == ("", RED_NUMBER, CONFIRMATION_FORM)
    assert credits_of(rr.invoice).count() == 1
    assert sms_of(rr, SmsPurpose.RETURN_COMPLETED).count() == 1
    assert not sms_of(rr, SmsPurpose.BUYER_CONFIRMATION).exists()


def test_a_form_the_buyer_entered_is_confirmed_and_its_number_is_not_asked_again(
    finance_client, customer, django_capture_on_commit_callbacks
):
    rr = digital_return(
        customer, django_capture_on_commit_callbacks, special=True, buyer_form_number=BUYERS_FORM
    )
    page = page_text(finance_client.get(record_url(rr.tax_request)))
    assert "Red-letter confirmation form number" not in page
    assert BUYERS_FORM in page  # in the facts
    with django_capture_on_commit_callbacks(execute=True):
        finance_client.post(record_url(rr.tax_request), red_letter_post(rr.invoice))
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    assert RedLetterInvoice.objects.get(original=rr.invoice).red_letter_form_number == BUYERS_FORM
    assert credits_of(rr.invoice).count() == 1


# --- who may do it ----------------------------------------------------------------------------


def test_a_user_without_the_record_permission_gets_403_on_every_digital_page(
    reviewer_client, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    booked = digital_return(CustomerFactory(), capture, special=True, buyer_booked=True)
    waiting = awaiting_buyer(CustomerFactory(), capture, form=BUYERS_FORM)
    set_deadline(waiting, timezone.now() - dt.timedelta(minutes=1))
    form_url = confirmation_form_url(booked.tax_request)
    decision_url = record_url(waiting.tax_request)
    assert reviewer_client.get(form_url).status_code == 403
    assert reviewer_client.post(form_url, {"form_number": CONFIRMATION_FORM}).status_code == 403
    assert reviewer_client.get(decision_url).status_code == 403
    assert (
        reviewer_client.post(decision_url, {"decision": BuyerDecision.EXPIRED}).status_code == 403
    )
    queue = page_text(reviewer_client.get(QUEUE_URL))
    assert booked.tax_request.serial in queue  # reviewers see the queue
    assert "Record the confirmation form" not in queue
    assert "/record/" not in queue
    booked.refresh_from_db()
    waiting.refresh_from_db()
    assert (booked.state, waiting.state) == (ReturnState.AWAITING_TAX, ReturnState.AWAITING_BUYER)


def test_a_reviewer_corrects_a_mistyped_digital_red_letter_number(
    finance_client, client, customer, django_capture_on_commit_callbacks
):
    rr = digital_return(customer, django_capture_on_commit_callbacks, buyer_booked=False)
    recorded = finance_client.post(
        record_url(rr.tax_request),
        red_letter_post(rr.invoice, red_letter_form_number=CONFIRMATION_FORM),
    )
    assert recorded.status_code == 302
    client.force_login(staff_in_role(ADMIN_REVIEWERS, username="rev.correct"))
    url = f"/admin/invoices/taxrequest/{rr.tax_request_id}/correct/"
    page = page_text(client.get(url))
    assert "Red-letter invoice code" not in page
    assert f'name="number" value="{RED_NUMBER}"' in page

    response = client.post(
        url,
        {
            "number": "26330000009999999910",
            "issued_on": today().isoformat(),
            "reason": "Typed 01 for 10",
        },
    )

    assert response.status_code == 302, page_text(response)
    current = rr.invoice.red_letter_invoice
    assert (current.code, current.number, current.red_letter_form_number) == (
        "",
        "26330000009999999910",
        CONFIRMATION_FORM,
    )
    assert credits_of(rr.invoice).count() == 1


# --- A digital invoice's file in the back office ------------------------------------------------


@pytest.mark.parametrize("role", [FINANCE_STAFF, ADMIN_REVIEWERS])
def test_r12_staff_open_a_digital_invoices_page_and_download_its_file_as_a_private_attachment(
    client, customer, role
):
    digital = issue_digital_invoice(customer)
    client.force_login(staff_in_role(role, username="staff"))
    page = client.get(f"/admin/invoices/invoice/{digital.pk}/change/")
    assert page.status_code == 200  # Django's display of the file asked it for a URL: 500
    download = reverse("admin:invoices_invoice_document", args=[digital.pk])
    assert f'<a href="{download}">{digital.number}.pdf</a>' in page.content.decode()

    response = client.get(download)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{digital.number}.pdf"'
    assert {"private", "no-store"} <= set(response["Cache-Control"].split(", "))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox")
    assert b"".join(response.streaming_content) == DIGITAL_INVOICE_PDF


def test_r12_an_invoices_file_is_for_staff_who_may_view_invoices_and_a_paper_one_has_none(
    client, customer, finance_client
):
    digital, paper = issue_digital_invoice(customer), issue_invoice(customer)
    page = finance_client.get(f"/admin/invoices/invoice/{paper.pk}/change/")
    assert page.status_code == 200
    assert "/document/" not in page.content.decode()
    assert (
        finance_client.get(reverse("admin:invoices_invoice_document", args=[paper.pk])).status_code
        == 404
    )
    client.force_login(get_user_model().objects.create_user("no-role", password="x", is_staff=True))
    response = client.get(reverse("admin:invoices_invoice_document", args=[digital.pk]))
    assert response.status_code == 403
    client.logout()
    response = client.get(reverse("admin:invoices_invoice_document", args=[digital.pk]))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
