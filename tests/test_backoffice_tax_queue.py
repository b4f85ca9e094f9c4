"""The back-office queue "To do in the tax system" and "Record outcome" (manual backend).

With ``TAX_SYSTEM_BACKEND=manual`` a processed return waits in *awaiting the tax system*: its
request is a row of finance's queue, holding everything needed to act in the tax system;
finance records what the tax system printed, and only then is the invoice voided or reversed,
the ledger credited (R7) and the success SMS queued (R8).
"""

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from core.audit.actor import Actor
from invoices.models import (
    Invoice,
    InvoiceState,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
    RedLetterInvoice,
    ReversalReason,
    TaxOperation,
    TaxRequest,
    TaxRequestState,
)
from invoices.workdays import business_tz
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnRequest, ReturnState
from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF
from tests.concurrency import run_concurrently
from tests.factories import CustomerFactory, issue_invoice, staff_in_role
from tests.returns_helpers import log_paper, migrate_returns_to, png_bytes, submit

pytestmark = pytest.mark.django_db

QUEUE_URL = "/admin/invoices/taxrequest/?state__exact=pending"
BUYER_FORM_NUMBER = "4403262600012345"
SELLER_FORM_NUMBER = "3301262600054321"
OTHER_USCC = "91310000607216553E"


@pytest.fixture(autouse=True)
def manual_backend(settings):
    settings.TAX_SYSTEM_BACKEND = "manual"


@pytest.fixture
def finance(db):
    return staff_in_role(FINANCE_STAFF, username="fin")


@pytest.fixture
def reviewer(db):
    return staff_in_role(ADMIN_REVIEWERS, username="rev")


@pytest.fixture
def finance_client(client, finance):
    client.force_login(finance)
    return client


@pytest.fixture
def reviewer_client(client, reviewer):
    client.force_login(reviewer)
    return client


def earlier_month() -> dt.datetime:
    """A moment safely in an earlier calendar month (Asia/Shanghai): a red-letter case."""
    return timezone.now() - dt.timedelta(days=45)


def today() -> dt.date:
    return timezone.localdate(timezone=business_tz())


def record_url(tax_request: TaxRequest) -> str:
    return f"/admin/invoices/taxrequest/{tax_request.pk}/record/"


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def row_of(response, serial: str) -> str:
    """The queue's table row holding this request, as text with its HTML."""
    rows = re.findall(r"<tr[^>]*>.*?</tr>", page_text(response), flags=re.DOTALL)
    matching = [row for row in rows if serial in row]
    assert len(matching) == 1, f"{serial} is in {len(matching)} rows"
    return matching[0]


def awaiting_tax(invoice: Invoice, finance, capture, **submit_kwargs) -> ReturnRequest:
    """Submitted by the customer, paper logged by finance, processed: awaiting the tax system."""
    with capture(execute=True):
        return_request = submit(invoice, **submit_kwargs)
        log_paper(invoice, finance)
    return_request.refresh_from_db()
    assert return_request.state == ReturnState.AWAITING_TAX
    return return_request


def certified_awaiting_tax(invoice: Invoice, finance, capture) -> ReturnRequest:
    """A certified special invoice: the buyer's form, approved by a reviewer, then processed."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from returns.services import red_letter_form_review

    with capture(execute=True):
        return_request = submit(
            invoice,
            certified=True,
            red_letter_form=SimpleUploadedFile("scan.png", png_bytes(), content_type="image/png"),
            red_letter_form_number=BUYER_FORM_NUMBER,
        )
        log_paper(invoice, finance)
        red_letter_form_review(
            red_letter_form_id=return_request.red_letter_forms.get().pk,
            reviewer=Actor.for_user(staff_in_role(ADMIN_REVIEWERS, username="rev.form")),
            approve=True,
        )
    return_request.refresh_from_db()
    assert return_request.state == ReturnState.AWAITING_TAX
    return return_request


def red_letter_post(invoice: Invoice, **overrides) -> dict[str, str]:
    """What a clerk types for a full red-letter invoice of ``invoice`` issued today."""
    return {
        "code": "3300201130",
        "number": "90000017",
        "issued_on": today().isoformat(),
        "amount": str(-invoice.amount),
        "tax": str(-invoice.tax),
        "total": str(-invoice.total),
    } | overrides


def credits_of(invoice: Invoice):
    return LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED)


def success_sms(return_request: ReturnRequest):
    return SmsMessage.objects.filter(
        related_return_id=return_request.pk, purpose=SmsPurpose.RETURN_COMPLETED
    )


def assert_nothing_recorded(return_request: ReturnRequest) -> None:
    return_request.refresh_from_db()
    assert return_request.state == ReturnState.AWAITING_TAX
    assert return_request.tax_request.state == TaxRequestState.PENDING
    assert return_request.invoice.state == InvoiceState.ISSUED
    assert not RedLetterInvoice.objects.filter(original=return_request.invoice).exists()
    assert not credits_of(return_request.invoice).exists()
    assert not success_sms(return_request).exists()


# --- the queue --------------------------------------------------------------------------------


def test_r6_the_queue_holds_every_fact_needed_to_reverse_an_invoice_in_the_tax_system(
    finance_client, finance, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(name="杭州示例贸易有限公司")
    invoice = issue_invoice(customer, amount="1000.00", issued_at=earlier_month())
    return_request = awaiting_tax(
        invoice,
        finance,
        django_capture_on_commit_callbacks,
        reason_code=ReversalReason.SALES_RETURN,
    )
    tax_request = return_request.tax_request
    response = finance_client.get(QUEUE_URL)
    assert response.status_code == 200
    assert "<h1>To do in the tax system</h1>" in page_text(response)
    row = row_of(response, tax_request.serial)
    requested_at = timezone.localtime(tax_request.created_at, business_tz())
    issued_on = timezone.localtime(invoice.issued_at, business_tz()).date()
    for fact in (
        tax_request.serial,
        f"{requested_at:%Y-%m-%d %H:%M}",
        "Red-letter invoice",
        "Sales return (销货退回)",
        f"{invoice.code} {invoice.number}",
        "VAT ordinary invoice",
        f"issued on {issued_on.isoformat()}",
        "杭州示例贸易有限公司",
        customer.taxpayer_id,
        "<dt>Amount</dt><dd>943.40</dd><dt>Tax rate</dt><dd>6%</dd>"
        "<dt>Tax</dt><dd>56.60</dd><dt>Total</dt><dd>1000.00</dd>",
        "Not needed for an ordinary invoice",
        f'href="/admin/returns/returnrequest/{return_request.pk}/change/">'
        f"Return #{return_request.pk}<",
        f'href="{record_url(tax_request)}">Record outcome<',
    ):
        assert fact in row, fact
    assert re.search(r"waiting \d+\xa0minutes?", row)


def test_r6_the_queue_says_void_or_whose_red_letter_form_applies(
    finance_client, finance, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    void = awaiting_tax(issue_invoice(customer), finance, django_capture_on_commit_callbacks)
    seller_files = awaiting_tax(
        issue_invoice(customer, invoice_type=InvoiceType.SPECIAL, issued_at=earlier_month()),
        finance,
        django_capture_on_commit_callbacks,
        certified=False,
    )
    buyer_filed = certified_awaiting_tax(
        issue_invoice(customer, invoice_type=InvoiceType.SPECIAL),
        finance,
        django_capture_on_commit_callbacks,
    )
    response = finance_client.get(QUEUE_URL)

    void_row = row_of(response, void.tax_request.serial)
    assert void.tax_request.operation == TaxOperation.VOID
    assert "<strong>Void</strong>" in void_row
    assert "Not needed for a void" in void_row
    seller_row = row_of(response, seller_files.tax_request.serial)
    assert "VAT special invoice" in seller_row
    assert "The seller files it first." in seller_row
    assert "then enter its 16-digit number with the outcome" in seller_row
    buyer_row = row_of(response, buyer_filed.tax_request.serial)
    assert "Red-letter invoice" in buyer_row
    assert BUYER_FORM_NUMBER in buyer_row
    assert "filed by the buyer" in buyer_row


def test_the_queue_lists_the_oldest_request_first(
    finance_client, finance, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    older, newer = (
        awaiting_tax(issue_invoice(customer), finance, django_capture_on_commit_callbacks)
        for _ in range(2)
    )
    TaxRequest.objects.filter(pk=newer.tax_request_id).update(
        created_at=timezone.now() - dt.timedelta(days=1)
    )
    TaxRequest.objects.filter(pk=older.tax_request_id).update(
        created_at=timezone.now() - dt.timedelta(days=3)
    )
    text = page_text(finance_client.get(QUEUE_URL))
    assert text.index(older.tax_request.serial) < text.index(newer.tax_request.serial)
    assert "waiting 3\xa0days" in row_of(finance_client.get(QUEUE_URL), older.tax_request.serial)


def test_the_queue_filters_by_state_and_operation_and_searches_serial_number_name_and_tax_id(
    finance_client, finance, django_capture_on_commit_callbacks
):
    first = awaiting_tax(
        issue_invoice(CustomerFactory(name="Alpha Cloud Ltd.")),
        finance,
        django_capture_on_commit_callbacks,
    )
    second = awaiting_tax(
        issue_invoice(
            CustomerFactory(name="Beta Data Ltd.", taxpayer_id=OTHER_USCC),
            issued_at=earlier_month(),
        ),
        finance,
        django_capture_on_commit_callbacks,
    )
    base = "/admin/invoices/taxrequest/"

    def serials(query: str) -> set[str]:
        text = page_text(finance_client.get(base + query))
        return {rr.tax_request.serial for rr in (first, second) if rr.tax_request.serial in text}

    both = {first.tax_request.serial, second.tax_request.serial}
    assert serials("?state__exact=pending") == both
    assert serials("?state__exact=done") == set()
    assert serials("?operation__exact=void") == {first.tax_request.serial}
    assert serials("?operation__exact=red_letter") == {second.tax_request.serial}
    assert serials(f"?q={second.tax_request.serial}") == {second.tax_request.serial}
    assert serials(f"?q={first.invoice.number}") == {first.tax_request.serial}
    assert serials("?q=Beta+Data") == {second.tax_request.serial}
    assert serials(f"?q={OTHER_USCC}") == {second.tax_request.serial}


@pytest.mark.parametrize("count", [1, 50])
def test_the_queue_loads_in_a_fixed_number_of_queries(
    count,
    finance_client,
    finance,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    customer = CustomerFactory()
    for index in range(count):
        kind = (InvoiceType.ORDINARY, InvoiceType.SPECIAL)[index % 2]
        issued_at = timezone.now() if index % 3 == 0 else earlier_month()
        awaiting_tax(
            issue_invoice(customer, invoice_type=kind, issued_at=issued_at),
            finance,
            django_capture_on_commit_callbacks,
            **({"certified": False} if kind == InvoiceType.SPECIAL else {}),
        )
    # Session, user, permissions (2), the two counts, the page: 7, whatever the length.
    with django_assert_max_num_queries(7):
        response = finance_client.get(QUEUE_URL)
    assert page_text(response).count(">Record outcome<") == count


# --- recording the outcome --------------------------------------------------------------------


def test_r6_r7_r8_finance_records_a_red_letter_invoice_and_the_return_completes_once(
    finance_client, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(CustomerFactory(), amount="1000.00", issued_at=earlier_month())
    return_request = awaiting_tax(invoice, finance, django_capture_on_commit_callbacks)
    tax_request = return_request.tax_request
    # Before the tax system's outcome is recorded, nothing is returned (R7, R8).
    assert_nothing_recorded(return_request)

    form_page = finance_client.get(record_url(tax_request))
    assert form_page.status_code == 200
    text = page_text(form_page)
    for label in (
        "Red-letter invoice code",
        "Red-letter invoice number",
        "Issue date",
        "Amount",
        "Tax",
        "Total",
    ):
        assert f">{label}:</label>" in text, label
    assert "Red-letter information form number" not in text  # an ordinary invoice has none
    assert "Voided on" not in text
    # Pre-filled with the original's figures negated, for the clerk to confirm.
    assert 'name="amount" value="-943.40"' in text
    assert 'name="tax" value="-56.60"' in text
    assert 'name="total" value="-1000.00"' in text
    assert f"{invoice.code} {invoice.number}" in text  # the facts again

    response = finance_client.post(
        record_url(tax_request), red_letter_post(invoice, number="90000017"), follow=True
    )

    assert response.redirect_chain[-1][0] == QUEUE_URL
    assert [str(m) for m in response.context["messages"]] == [
        f"Return #{return_request.pk} completed: invoice {invoice.code} {invoice.number} "
        "reversed by red-letter invoice 3300201130 90000017."
    ]
    return_request.refresh_from_db()
    assert (return_request.state, return_request.outcome) == (ReturnState.COMPLETED, "reversed")
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.REVERSED
    red = RedLetterInvoice.objects.get(original=invoice)
    assert (red.code, red.number, red.issued_on) == ("3300201130", "90000017", today())
    assert (red.amount, red.tax, red.total) == (
        Decimal("-943.40"),
        Decimal("-56.60"),
        Decimal("-1000.00"),
    )
    assert [c.amount for c in credits_of(invoice)] == [Decimal("1000.00")]
    [sms] = success_sms(return_request)
    assert "90000017" in sms.body
    tax_request.refresh_from_db()
    assert (tax_request.state, tax_request.recorded_by) == (TaxRequestState.DONE, finance)


def test_r11_the_recording_clerk_is_in_the_timeline_and_the_admin_history(
    finance_client, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(CustomerFactory(), issued_at=earlier_month())
    return_request = awaiting_tax(invoice, finance, django_capture_on_commit_callbacks)
    finance_client.post(record_url(return_request.tax_request), red_letter_post(invoice))
    event = return_request.events.get(to_state=ReturnState.COMPLETED)
    assert (event.actor, event.from_state) == (finance, ReturnState.AWAITING_TAX)
    assert "90000017" in event.text
    entry = LogEntry.objects.get(object_id=str(return_request.tax_request_id))
    assert (entry.user, entry.change_message) == (finance, "Outcome recorded")


def test_r6_r7_r8_finance_records_a_void_and_the_return_completes_once(
    finance_client, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(CustomerFactory(), amount="500.00")
    return_request = awaiting_tax(invoice, finance, django_capture_on_commit_callbacks)
    tax_request = return_request.tax_request
    assert tax_request.operation == TaxOperation.VOID
    assert_nothing_recorded(return_request)
    text = page_text(finance_client.get(record_url(tax_request)))
    assert ">Voided on:</label>" in text
    assert "Red-letter invoice number" not in text

    response = finance_client.post(
        record_url(tax_request), {"voided_on": today().isoformat()}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == [
        f"Return #{return_request.pk} completed: invoice {invoice.code} {invoice.number} "
        f"voided on {today().isoformat()}."
    ]
    return_request.refresh_from_db()
    assert (return_request.state, return_request.outcome) == (ReturnState.COMPLETED, "voided")
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.VOIDED
    tax_request.refresh_from_db()
    assert tax_request.voided_on == today()
    assert [c.amount for c in credits_of(invoice)] == [Decimal("500.00")]
    assert success_sms(return_request).count() == 1


def test_r6_the_seller_files_the_form_first_and_finance_enters_its_number(
    finance_client, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(
        CustomerFactory(), invoice_type=InvoiceType.SPECIAL, issued_at=earlier_month()
    )
    return_request = awaiting_tax(
        invoice, finance, django_capture_on_commit_callbacks, certified=False
    )
    url = record_url(return_request.tax_request)
    assert ">Red-letter information form number:</label>" in page_text(finance_client.get(url))

    missing = finance_client.post(url, red_letter_post(invoice))
    assert missing.status_code == 200
    assert (
        "Enter the 16-digit number of the red-letter information form the seller filed."
        in page_text(missing)
    )
    assert_nothing_recorded(return_request)

    finance_client.post(url, red_letter_post(invoice, red_letter_form_number="3301 2626 0005 4321"))
    return_request.refresh_from_db()
    assert return_request.state == ReturnState.COMPLETED
    assert RedLetterInvoice.objects.get(original=invoice).red_letter_form_number == (
        SELLER_FORM_NUMBER
    )


def test_r6_a_certified_invoice_is_reversed_against_the_buyers_form(
    finance_client, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(CustomerFactory(), invoice_type=InvoiceType.SPECIAL)
    return_request = certified_awaiting_tax(invoice, finance, django_capture_on_commit_callbacks)
    url = record_url(return_request.tax_request)
    text = page_text(finance_client.get(url))
    assert BUYER_FORM_NUMBER in text
    assert "Red-letter information form number:</label>" not in text  # the buyer's is known
    finance_client.post(url, red_letter_post(invoice))
    assert RedLetterInvoice.objects.get(original=invoice).red_letter_form_number == (
        BUYER_FORM_NUMBER
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"amount": "-943.39", "tax": "-56.61"},
            "A full red-letter invoice prints the original's figures negated: amount -943.40, "
            "tax rate 6%, tax -56.60, total -1000.00.",
        ),
        ({"number": "9000001"}, "The red-letter invoice number is 8 digits."),
        ({"number": "9000001A"}, "The red-letter invoice number is 8 digits."),
        ({"code": "33002011"}, "The red-letter invoice code is 10 or 12 digits."),
        ({"issued_on": "2020-01-01"}, "The red-letter invoice's date must be between"),
    ],
    ids=["wrong-amount", "short-number", "letter-in-number", "short-code", "date-before-issue"],
)
def test_r6_a_bad_red_letter_entry_is_refused_with_why_and_nothing_is_saved(
    overrides, message, finance_client, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(CustomerFactory(), amount="1000.00", issued_at=earlier_month())
    return_request = awaiting_tax(invoice, finance, django_capture_on_commit_callbacks)
    typed = red_letter_post(invoice, **overrides)

    response = finance_client.post(record_url(return_request.tax_request), typed)

    assert response.status_code == 200
    text = page_text(response)
    assert message in text
    for name, value in typed.items():  # nothing the clerk typed is lost
        assert f'name="{name}" value="{value}"' in text, name
    assert_nothing_recorded(return_request)


def test_r6_a_red_letter_number_of_another_invoice_is_refused(
    finance_client, finance, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    blue = issue_invoice(customer)
    invoice = issue_invoice(customer, issued_at=earlier_month())
    return_request = awaiting_tax(invoice, finance, django_capture_on_commit_callbacks)

    response = finance_client.post(
        record_url(return_request.tax_request),
        red_letter_post(invoice, code=blue.code, number=blue.number),
    )

    assert f"{blue.code} {blue.number} is a blue invoice already recorded" in page_text(response)
    assert_nothing_recorded(return_request)


def test_r6_a_red_letter_number_already_recorded_for_another_return_is_refused(
    finance_client, finance, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    first = issue_invoice(customer, issued_at=earlier_month())
    second = issue_invoice(customer, issued_at=earlier_month())
    first_return = awaiting_tax(first, finance, django_capture_on_commit_callbacks)
    second_return = awaiting_tax(second, finance, django_capture_on_commit_callbacks)
    finance_client.post(record_url(first_return.tax_request), red_letter_post(first))

    response = finance_client.post(record_url(second_return.tax_request), red_letter_post(second))

    assert "Invoice 3300201130 90000017 is already recorded: check the number." in page_text(
        response
    )
    assert_nothing_recorded(second_return)
    assert credits_of(first).count() == 1


def test_r6_a_void_dated_outside_its_month_of_issue_is_refused(
    finance_client, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(CustomerFactory())
    return_request = awaiting_tax(invoice, finance, django_capture_on_commit_callbacks)
    issued_on = timezone.localtime(invoice.issued_at, business_tz()).date()
    last_month = issued_on.replace(day=1) - dt.timedelta(days=1)

    response = finance_client.post(
        record_url(return_request.tax_request), {"voided_on": last_month.isoformat()}
    )

    text = page_text(response)
    assert f"A paper invoice is voided only in its month of issue ({issued_on:%Y-%m})" in text
    assert f'name="voided_on" value="{last_month.isoformat()}"' in text
    assert_nothing_recorded(return_request)


def test_r6_a_void_without_a_date_is_refused(
    finance_client, finance, django_capture_on_commit_callbacks
):
    return_request = awaiting_tax(
        issue_invoice(CustomerFactory()), finance, django_capture_on_commit_callbacks
    )
    response = finance_client.post(record_url(return_request.tax_request), {"voided_on": ""})
    assert "This field is required." in page_text(response)
    assert_nothing_recorded(return_request)


def test_r7_r8_recording_the_same_outcome_twice_is_a_no_op(
    finance_client, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(CustomerFactory(), issued_at=earlier_month())
    return_request = awaiting_tax(invoice, finance, django_capture_on_commit_callbacks)
    url = record_url(return_request.tax_request)
    finance_client.post(url, red_letter_post(invoice), follow=True)  # its message is shown

    again = finance_client.post(url, red_letter_post(invoice), follow=True)  # a double submit

    assert again.status_code == 200
    assert [str(m) for m in again.context["messages"]] == [
        f"The outcome of request {return_request.tax_request.serial} is already recorded: "
        "nothing was changed."
    ]
    assert credits_of(invoice).count() == 1
    assert success_sms(return_request).count() == 1
    assert RedLetterInvoice.objects.filter(original=invoice).count() == 1
    assert return_request.events.filter(to_state=ReturnState.COMPLETED).count() == 1
    # The record page now shows what was recorded, and offers nothing to save.
    text = page_text(finance_client.get(url))
    assert "Red-letter invoice 3300201130 90000017 issued on" in text
    assert "Recorded by fin." in text
    assert 'value="Save"' not in text


# --- who may do what --------------------------------------------------------------------------


def test_roles_finance_may_view_and_record_the_queue_reviewers_only_view_it():
    finance = set(
        Group.objects.get(name=FINANCE_STAFF).permissions.values_list("codename", flat=True)
    )
    reviewers = set(
        Group.objects.get(name=ADMIN_REVIEWERS).permissions.values_list("codename", flat=True)
    )
    assert {"view_taxrequest", "record_taxrequest"} <= finance
    assert "view_taxrequest" in reviewers
    assert "record_taxrequest" not in reviewers


def test_roles_migration_gives_existing_databases_the_queue_permissions():
    migrate_returns_to("0005_awaiting_tax_system")
    finance = Group.objects.get(name=FINANCE_STAFF)
    assert not finance.permissions.filter(codename="record_taxrequest").exists()

    migrate_returns_to("0006_roles_tax_queue")

    assert finance.permissions.filter(codename="record_taxrequest").exists()
    assert (
        Group.objects.get(name=ADMIN_REVIEWERS)
        .permissions.filter(codename="view_taxrequest")
        .exists()
    )


def test_the_index_links_finance_and_reviewers_to_the_queue(finance_client, client, reviewer):
    link = f'<a href="{QUEUE_URL}">To do in the tax system</a>'
    assert link in page_text(finance_client.get("/admin/"))
    client.force_login(reviewer)
    assert link in page_text(client.get("/admin/"))


def test_a_reviewer_sees_the_queue_without_record_links_and_may_not_record(
    reviewer_client, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(CustomerFactory(), issued_at=earlier_month())
    return_request = awaiting_tax(invoice, finance, django_capture_on_commit_callbacks)
    queue = reviewer_client.get(QUEUE_URL)
    assert queue.status_code == 200
    assert return_request.tax_request.serial in page_text(queue)
    assert "Record outcome" not in page_text(queue)
    assert "/record/" not in page_text(queue)
    url = record_url(return_request.tax_request)
    assert reviewer_client.get(url).status_code == 403
    assert reviewer_client.post(url, red_letter_post(invoice)).status_code == 403
    assert_nothing_recorded(return_request)


def test_a_customer_is_sent_to_the_admin_login(
    client, customer, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(customer, issued_at=earlier_month())
    return_request = awaiting_tax(invoice, finance, django_capture_on_commit_callbacks)
    client.force_login(customer.user)
    url = record_url(return_request.tax_request)
    for response in (
        client.get(QUEUE_URL),
        client.get(url),
        client.post(url, red_letter_post(invoice)),
    ):
        assert response.status_code == 302
        assert response.url.startswith("/admin/login/")
    assert_nothing_recorded(return_request)


def test_the_queue_is_read_only_even_for_a_superuser(admin_client):
    assert admin_client.get("/admin/invoices/taxrequest/add/").status_code == 403
    assert "Add tax-system request" not in page_text(admin_client.get(QUEUE_URL))


# --- two clerks at once -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_r6_r7_two_clerks_recording_at_once_record_one_outcome_and_both_see_a_message():
    finance = staff_in_role(FINANCE_STAFF, username="fin.one")
    other = staff_in_role(FINANCE_STAFF, username="fin.two")
    invoice = issue_invoice(CustomerFactory(), issued_at=earlier_month())
    return_request = submit(invoice)
    log_paper(invoice, finance)  # not in a test transaction: on-commit work runs at once
    return_request.refresh_from_db()
    assert return_request.state == ReturnState.AWAITING_TAX
    url = record_url(return_request.tax_request)
    clients = []
    for user in (finance, other):
        clerk = Client()
        clerk.force_login(user)
        clients.append(clerk)

    responses = run_concurrently(
        lambda: clients[0].post(url, red_letter_post(invoice, number="90000021"), follow=True),
        lambda: clients[1].post(url, red_letter_post(invoice, number="90000022"), follow=True),
    )

    assert [r.status_code for r in responses] == [200, 200]
    texts = [page_text(r) for r in responses]
    assert sum("completed: invoice" in text for text in texts) == 1
    assert sum("already recorded" in text for text in texts) == 1
    assert RedLetterInvoice.objects.filter(original=invoice).count() == 1
    assert credits_of(invoice).count() == 1
    assert success_sms(return_request).count() == 1


# An audited correction by an admin reviewer --------------------------------------------------


def correct_url(tax_request: TaxRequest) -> str:
    return f"/admin/invoices/taxrequest/{tax_request.pk}/correct/"


def recorded_reversal(customer, finance, capture) -> ReturnRequest:
    invoice = issue_invoice(customer, issued_at=earlier_month())
    rr = awaiting_tax(invoice, finance, capture)
    client = Client()
    client.force_login(finance)
    response = client.post(
        record_url(rr.tax_request),
        {
            "code": "3300262130",
            "number": "61000001",
            "issued_on": today().isoformat(),
            "amount": -invoice.amount,
            "tax": -invoice.tax,
            "total": -invoice.total,
        },
    )
    assert response.status_code == 302, page_text(response)
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    return rr


def test_r11_a_reviewer_corrects_a_mistyped_red_letter_number_and_it_is_audited(
    customer, finance, reviewer_client, reviewer, django_capture_on_commit_callbacks
):
    rr = recorded_reversal(customer, finance, django_capture_on_commit_callbacks)
    queue = reviewer_client.get("/admin/invoices/taxrequest/")
    assert "Correct the outcome" in row_of(queue, rr.tax_request.serial)
    page = reviewer_client.get(correct_url(rr.tax_request))
    assert page.status_code == 200
    assert 'value="61000001"' in page_text(page)  # pre-filled with what is recorded

    refused = reviewer_client.post(
        correct_url(rr.tax_request),
        {"code": "3300262130", "number": "61000010", "issued_on": today(), "reason": ""},
    )
    assert refused.status_code == 200
    assert not RedLetterInvoice.objects.filter(number="61000010").exists()

    response = reviewer_client.post(
        correct_url(rr.tax_request),
        {
            "code": "3300262130",
            "number": "61000010",
            "issued_on": today().isoformat(),
            "reason": "Typed 01 for 10",
        },
    )
    assert response.status_code == 302, page_text(response)
    assert rr.invoice.red_letter_invoice.number == "61000010"
    superseded = RedLetterInvoice.objects.get(number="61000001")
    assert superseded.superseded_at is not None
    correction = rr.tax_request.corrections.get()
    assert (correction.corrected_by, correction.reason) == (reviewer, "Typed 01 for 10")
    assert rr.events.order_by("id").last().actor == reviewer
    assert LogEntry.objects.filter(object_id=str(rr.tax_request.pk)).count() == 2
    assert LedgerEntry.objects.filter(kind=LedgerKind.INVOICE_RETURNED).count() == 1


def test_finance_staff_cannot_correct_a_recorded_outcome(
    customer, finance, finance_client, django_capture_on_commit_callbacks
):
    rr = recorded_reversal(customer, finance, django_capture_on_commit_callbacks)
    assert finance_client.get(correct_url(rr.tax_request)).status_code == 403
    response = finance_client.post(
        correct_url(rr.tax_request),
        {"code": "3300262130", "number": "61000010", "issued_on": today(), "reason": "x"},
    )
    assert response.status_code == 403
    assert not RedLetterInvoice.objects.filter(number="61000010").exists()
    queue = finance_client.get("/admin/invoices/taxrequest/")
    assert "Correct the outcome" not in row_of(queue, rr.tax_request.serial)


def test_roles_migration_0007_gives_finance_the_log_in_unlock_without_a_delete():
    migrate_returns_to("0006_roles_tax_queue")
    finance = Group.objects.get(name=FINANCE_STAFF)
    assert not finance.permissions.filter(codename="change_accessattempt").exists()

    migrate_returns_to("0007_roles_unlock_log_ins")
    codenames = set(finance.permissions.values_list("codename", flat=True))
    assert {"view_accessattempt", "change_accessattempt"} <= codenames
    assert not [codename for codename in codenames if codename.startswith("delete_")]
