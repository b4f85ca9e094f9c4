"""The finance back office in the Django admin: roles, logging received paper, reviewing
red-letter forms, the returns queue, issuing invoices and the overview."""

import datetime as dt
import importlib

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from invoices.codes import InvalidCodeAndNumber, parse_code_and_number
from invoices.models import ApplicationState, Invoice, InvoiceApplication, InvoiceType
from invoices.services import invoice_application_create
from invoices.workdays import promised_issue_date
from notifications.models import EmailNotification, SmsMessage, SmsPurpose, SmsStatus
from notifications.services import email_notification_give_up
from returns.models import FormReviewState, MailReceipt, RedLetterForm, ReturnRequest, ReturnState
from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF, ROLES
from returns.selectors import back_office_overview
from tests.factories import (
    VALID_USCC,
    CustomerFactory,
    UserFactory,
    fund,
    issue_invoice,
    mailing_fields,
    staff_in_role,
)
from tests.returns_helpers import log_paper, migrate_returns_to, pdf_upload, png_bytes, submit

pytestmark = pytest.mark.django_db

LOG_URL = "/admin/returns/mailreceipt/log/"


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


def receipt_post(client, entry: str, *, complete: bool = True, **extra):
    data = {
        "code_and_number": entry,
        "received_at": "2026-01-05T10:30",
        "courier": "SF Express",
        "tracking_number": "SF123",
        "notes": "",
        **extra,
    }
    if complete:
        data.update(invoice_form_present="on", deduction_form_present="on", undamaged="on")
    return client.post(LOG_URL, data, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def certified_return(special_invoice, form_upload=None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = form_upload or SimpleUploadedFile("scan.png", png_bytes(), content_type="image/png")
    return submit(
        special_invoice,
        certified=True,
        red_letter_form=upload,
        red_letter_form_number="4403000100000001",
    )


# --- roles ------------------------------------------------------------------------------------


def test_roles_migration_creates_both_groups_without_any_delete_permission():
    finance = Group.objects.get(name=FINANCE_STAFF)
    reviewers = Group.objects.get(name=ADMIN_REVIEWERS)
    finance_perms = set(finance.permissions.values_list("codename", flat=True))
    reviewer_perms = set(reviewers.permissions.values_list("codename", flat=True))
    assert {"log_mailreceipt", "reject_returnrequest", "retry_returnrequest", "add_invoice"} <= (
        finance_perms
    )
    assert "resend_smsmessage" in finance_perms
    assert "review_redletterform" not in finance_perms
    assert "review_redletterform" in reviewer_perms
    assert not {"log_mailreceipt", "add_invoice", "reject_returnrequest"} & reviewer_perms
    assert not [p for p in finance_perms | reviewer_perms if p.startswith("delete_")]


def test_roles_the_newest_roles_migration_gives_the_roles_returns_roles_describes():
    # Each roles migration freezes the table of its day; the newest must be today's, or a
    # database migrated from scratch and one made by demo_data would differ.
    newest = importlib.import_module("returns.migrations.0018_roles_view_emails")
    assert {name: set(codenames) for name, codenames in newest.ROLES.items()} == {
        name: set(codenames) for name, codenames in ROLES.items()
    }


def test_roles_migration_0018_lets_finance_see_the_emails_sent_to_customers():
    migrate_returns_to("0017_event_return_index_once")
    finance = Group.objects.get(name=FINANCE_STAFF)
    assert not finance.permissions.filter(codename="view_emailnotification").exists()

    migrate_returns_to("0018_roles_view_emails")
    assert finance.permissions.filter(codename="view_emailnotification").exists()
    reviewers = Group.objects.get(name=ADMIN_REVIEWERS)
    assert not reviewers.permissions.filter(codename="view_emailnotification").exists()


def test_finance_sees_a_failed_email_and_why_and_the_overview_counts_it(finance_client, reviewer):
    email = EmailNotification.objects.create(
        to="clerk@example.com",
        subject="Invoice 12345678: Return completed",
        body="Invoice 12345678 is voided.",
        template="return_completed",
        purpose=SmsPurpose.RETURN_COMPLETED,
        idempotency_key="return:1:return_completed",
    )
    email_notification_give_up(
        email_notification_id=email.pk, error="SMTPRecipientsRefused: 550 mailbox unavailable"
    )

    failed_list = "/admin/notifications/emailnotification/?status__exact=failed"
    listed = finance_client.get(failed_list)
    assert listed.status_code == 200
    assert "clerk@example.com" in listed.content.decode()
    shown = finance_client.get(
        reverse("admin:notifications_emailnotification_change", args=[email.pk])
    ).content.decode()
    assert "SMTPRecipientsRefused: 550 mailbox unavailable" in shown

    assert back_office_overview().emails_failed_last_7_days == 1
    index = finance_client.get("/admin/").content.decode()
    assert (
        f'<a href="{failed_list}">Email failures in the last 7 days</a></th>'
        '<td id="overview-emails-failed">1</td>'
    ) in index

    # Reviewers see neither the SMS nor the emails: finance answers the customers.
    reviewer_client = Client()
    reviewer_client.force_login(reviewer)
    assert reviewer_client.get(failed_list).status_code == 403
    assert "Email failures" not in reviewer_client.get("/admin/").content.decode()


def test_a_customer_gets_the_login_page_instead_of_the_back_office(client, customer):
    client.force_login(customer.user)
    for url in ("/admin/", LOG_URL, "/admin/returns/redletterform/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/admin/login/")


def test_the_index_links_each_role_to_its_own_work(finance_client, client, reviewer):
    page = finance_client.get("/admin/").content.decode()
    assert "Log received paper invoice" in page
    assert "Red-letter forms to review" in page
    client.force_login(reviewer)
    page = client.get("/admin/").content.decode()
    assert "Red-letter forms to review" in page
    assert "Log received paper invoice" not in page


def test_nobody_may_delete_a_return_a_receipt_an_invoice_or_a_ledger_entry(
    client, invoice, finance_user
):
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    submit(invoice)
    log_paper(invoice, finance_user)
    client.force_login(admin_user)
    rr = ReturnRequest.objects.get()
    for url in (
        f"/admin/returns/returnrequest/{rr.pk}/delete/",
        f"/admin/returns/mailreceipt/{rr.mail_receipt_id}/delete/",
        f"/admin/invoices/invoice/{invoice.pk}/delete/",
    ):
        assert client.get(url).status_code == 403
    entry = invoice.customer.ledger_entries.first()
    assert client.get(f"/admin/invoices/ledgerentry/{entry.pk}/delete/").status_code == 403
    assert (
        client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").context["has_change_permission"]
        is False
    )


# --- log received paper invoice ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("3300201130 10000001", ("3300201130", "10000001")),
        ("  3300201130   10000001 ", ("3300201130", "10000001")),
        ("330020113010000001", ("3300201130", "10000001")),
        ("033002011301 10000001", ("033002011301", "10000001")),
        ("03300201130110000001", ("033002011301", "10000001")),
        ("3300201130-10000001", ("3300201130", "10000001")),
    ],
)
def test_the_code_and_number_are_read_typed_with_a_space_or_scanned_concatenated(entry, expected):
    assert parse_code_and_number(entry) == expected


@pytest.mark.parametrize("entry", ["", "3300201130", "33002011301000000", "3300201130 1000000x"])
def test_a_code_and_number_that_cannot_be_split_is_refused(entry):
    with pytest.raises(InvalidCodeAndNumber):
        parse_code_and_number(entry)


def test_the_receipt_page_has_the_field_and_the_save_button(finance_client):
    page = finance_client.get(LOG_URL).content.decode()
    assert ">Invoice code and number:</label>" in page
    assert 'value="Save"' in page
    assert "autofocus" in page


def test_r4_a_scanned_receipt_is_matched_and_the_return_completes(
    finance_client, invoice, django_capture_on_commit_callbacks
):
    rr = submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        response = receipt_post(finance_client, f"{invoice.code}{invoice.number}")
    assert (
        f"Matched to return #{rr.pk}: the paper is complete and the return is now being"
        in (messages_of(response)[0])
    )
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    assert rr.mail_receipt.received_by.username == "fin"
    assert rr.events.filter(actor__username="fin", to_state=ReturnState.RECEIVED).exists()
    assert LogEntry.objects.filter(user__username="fin", object_id=str(rr.mail_receipt_id)).exists()


def test_r5_incomplete_paper_rejects_the_return_and_says_why(finance_client, special_invoice):
    rr = submit(special_invoice, certified=False)
    response = receipt_post(
        finance_client,
        f"{special_invoice.code} {special_invoice.number}",
        complete=False,
        invoice_form_present="on",
        undamaged="on",
    )
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    message = messages_of(response)[0]
    assert f"Matched to return #{rr.pk}, which is held because the forms are incomplete" in message
    assert "the deduction form" in message


def test_r4_paper_before_the_online_return_is_logged_unmatched(finance_client, invoice):
    response = receipt_post(finance_client, f"{invoice.code} {invoice.number}")
    assert (
        "logged unmatched: no open return waits for this paper. It waits in “Unmatched paper”"
        in (messages_of(response)[0])
    )
    receipt = MailReceipt.objects.get()
    assert submit(invoice).mail_receipt == receipt


def test_r4_paper_for_a_certified_return_waits_for_the_form(finance_client, special_invoice):
    rr = certified_return(special_invoice)
    response = receipt_post(finance_client, f"{special_invoice.code} {special_invoice.number}")
    rr.refresh_from_db()
    assert rr.state == ReturnState.RECEIVED
    assert "waits for its red-letter form to be approved" in messages_of(response)[0]


def test_logging_the_same_envelope_twice_saves_nothing_the_second_time(finance_client, invoice):
    submit(invoice)
    receipt_post(finance_client, f"{invoice.code} {invoice.number}")
    response = receipt_post(finance_client, f"{invoice.code}{invoice.number}")
    assert "was already logged as received" in messages_of(response)[0]
    assert MailReceipt.objects.count() == 1


def test_an_unknown_invoice_number_saves_nothing_and_keeps_the_entry(finance_client, invoice):
    response = receipt_post(finance_client, "3300201130 99999999")
    assert response.status_code == 200
    page = response.content.decode()
    assert "No invoice has code 3300201130 and number 99999999" in page
    assert 'value="3300201130 99999999"' in page
    assert MailReceipt.objects.count() == 0


def test_a_malformed_entry_is_refused_by_the_form(finance_client):
    response = receipt_post(finance_client, "12345")
    # The field takes a return slip, an invoice's QR code or a code and number: it names all.
    page = response.content.decode()
    assert "12345 is not a return slip" in page
    assert "or an invoice code (10 or 12 digits) and number (8 digits)" in page
    assert MailReceipt.objects.count() == 0


def test_a_reviewer_cannot_log_receipts(reviewer_client, invoice):
    assert reviewer_client.get(LOG_URL).status_code == 403
    assert receipt_post(reviewer_client, f"{invoice.code} {invoice.number}").status_code == 403
    assert MailReceipt.objects.count() == 0


# --- red-letter form review -------------------------------------------------------------------


def review_url(form: RedLetterForm) -> str:
    return reverse("admin:returns_redletterform_review", args=[form.pk])


def test_the_review_queue_lists_pending_forms_oldest_first(reviewer_client, customer):
    first = certified_return(issue_invoice(customer, invoice_type=InvoiceType.SPECIAL))
    second = certified_return(issue_invoice(customer, invoice_type=InvoiceType.SPECIAL))
    response = reviewer_client.get("/admin/returns/redletterform/?review_state__exact=pending")
    forms = list(response.context["cl"].result_list)
    assert [f.return_request_id for f in forms] == [first.pk, second.pk]


def test_r4_approving_the_form_when_the_paper_is_in_completes_the_return(
    reviewer_client, special_invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = certified_return(special_invoice)
    log_paper(special_invoice, finance_user)
    form = RedLetterForm.objects.get()
    page = reviewer_client.get(review_url(form)).content.decode()
    assert "4403000100000001" in page
    assert "Wrong title" in page
    assert f'<img src="/admin/returns/redletterform/{form.pk}/scan/"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = reviewer_client.post(review_url(form), {"approve": "Approve", "reason": ""})
    assert response.status_code == 302
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    assert rr.outcome == "reversed"
    form.refresh_from_db()
    assert form.reviewer.username == "rev"


def test_rejecting_a_form_needs_a_reason_the_customer_sees(reviewer_client, special_invoice):
    certified_return(special_invoice)
    form = RedLetterForm.objects.get()
    response = reviewer_client.post(
        review_url(form), {"reject": "Reject", "reason": ""}, follow=True
    )
    assert "Say why the form is rejected" in messages_of(response)[0]
    form.refresh_from_db()
    assert form.review_state == FormReviewState.PENDING
    reviewer_client.post(review_url(form), {"reject": "Reject", "reason": "Blurred scan"})
    form.refresh_from_db()
    assert (form.review_state, form.review_reason) == (FormReviewState.REJECTED, "Blurred scan")


def test_finance_staff_cannot_approve_a_form(finance_client, special_invoice):
    certified_return(special_invoice)
    form = RedLetterForm.objects.get()
    page = finance_client.get(review_url(form))
    assert page.status_code == 200
    assert 'name="approve"' not in page.content.decode()
    assert finance_client.post(review_url(form), {"approve": "Approve"}).status_code == 403
    form.refresh_from_db()
    assert form.review_state == FormReviewState.PENDING


def test_r12_the_scan_is_streamed_with_its_sniffed_type_to_staff_only(
    reviewer_client, client, special_invoice
):
    certified_return(special_invoice, form_upload=pdf_upload("looks-like.png"))
    form = RedLetterForm.objects.get()
    url = reverse("admin:returns_redletterform_scan", args=[form.pk])
    response = reviewer_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    # The review page embeds the scan: the scan may be framed by the same origin only, the
    # page itself (like every other page) not at all.
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    review = reviewer_client.get(review_url(form))
    assert review["X-Frame-Options"] == "DENY"
    page = review.content.decode()
    assert f'<embed src="{url}" type="application/pdf"' in page
    client.force_login(special_invoice.customer.user)
    assert client.get(url).status_code == 302  # to the admin login
    nobody = UserFactory(username="plain-staff", is_staff=True)
    client.force_login(nobody)
    assert client.get(url).status_code == 403


# --- the returns queue ------------------------------------------------------------------------


def test_finance_rejects_a_return_with_a_reason_from_the_action_bar(finance_client, invoice):
    rr = submit(invoice)
    response = finance_client.post(
        "/admin/returns/returnrequest/",
        {"action": "reject", "_selected_action": [rr.pk], "reason": "Paper never arrived"},
        follow=True,
    )
    assert "1 return rejected." in messages_of(response)
    rr.refresh_from_db()
    assert (rr.state, rr.rejection_reason) == (ReturnState.REJECTED, "Paper never arrived")
    assert rr.events.last().actor.username == "fin"


def test_rejecting_without_a_reason_shows_the_domain_error(finance_client, invoice):
    rr = submit(invoice)
    response = finance_client.post(
        "/admin/returns/returnrequest/",
        {"action": "reject", "_selected_action": [rr.pk], "reason": " "},
        follow=True,
    )
    assert f"Return #{rr.pk}: Please say why" in messages_of(response)[0]
    rr.refresh_from_db()
    assert rr.state == ReturnState.SUBMITTED


def test_finance_retries_a_failed_return(finance_client, invoice, finance_user):
    rr = submit(invoice)
    log_paper(invoice, finance_user)
    ReturnRequest.objects.filter(pk=rr.pk).update(state=ReturnState.FAILED, error="boom")
    response = finance_client.post(
        "/admin/returns/returnrequest/",
        {"action": "retry", "_selected_action": [rr.pk]},
        follow=True,
    )
    assert f"Return #{rr.pk} is being processed again." in messages_of(response)
    rr.refresh_from_db()
    assert rr.state in (ReturnState.PROCESSING, ReturnState.COMPLETED)


def test_retrying_a_return_that_did_not_fail_shows_the_domain_error(finance_client, invoice):
    rr = submit(invoice)
    response = finance_client.post(
        "/admin/returns/returnrequest/",
        {"action": "retry", "_selected_action": [rr.pk]},
        follow=True,
    )
    assert f"Return #{rr.pk}: Only a failed return can be retried." in messages_of(response)


def test_a_reviewer_has_neither_the_reject_nor_the_retry_action(reviewer_client, invoice):
    rr = submit(invoice)
    response = reviewer_client.get("/admin/returns/returnrequest/")
    assert response.status_code == 200
    assert response.context["action_form"] is None  # no action at all is offered
    reviewer_client.post(
        "/admin/returns/returnrequest/",
        {"action": "reject", "_selected_action": [rr.pk], "reason": "no"},
    )
    rr.refresh_from_db()
    assert rr.state == ReturnState.SUBMITTED


def test_the_queue_searches_by_invoice_number_customer_name_or_phone(finance_client, customer):
    other = CustomerFactory(name="Ningbo Other Co.")
    mine = submit(issue_invoice(customer))
    theirs = submit(issue_invoice(other))
    for term, expected in (
        (mine.invoice.number, mine),
        ("Ningbo Other", theirs),
        (customer.mobile, mine),
    ):
        response = finance_client.get("/admin/returns/returnrequest/", {"q": term})
        assert list(response.context["cl"].result_list) == [expected]


def test_the_return_page_shows_the_timeline_inline(finance_client, invoice):
    rr = submit(invoice, reason="Title typo")
    page = finance_client.get(f"/admin/returns/returnrequest/{rr.pk}/change/").content.decode()
    assert "Timeline" in page
    assert "Title typo" in page


def _returns(count: int) -> None:
    """``count`` submitted returns: the first through the services, the rest copies of it
    written in bulk (the queue reads only these rows; building 500 chains takes seconds)."""
    customer = CustomerFactory()
    fund(customer, "10.00")
    first = submit(issue_invoice(customer, amount="10.00", fund_first=False))
    _copies(first, count - 1)
    assert ReturnRequest.objects.filter(state=ReturnState.SUBMITTED).count() == count


def _copies(first: ReturnRequest, count: int, *, forms: bool = False) -> None:
    """``count`` copies of the return ``first`` (its application, invoice and, with ``forms``,
    its red-letter forms), each on an invoice of its own, written in bulk."""
    invoice, application = first.invoice, first.invoice.application
    applications = InvoiceApplication.objects.bulk_create(
        [_copy(application, state=ApplicationState.ISSUED) for _ in range(count)]
    )
    invoices = Invoice.objects.bulk_create(
        [
            _copy(invoice, application=a, code="3300201131", number=f"{90000000 + n:08d}")
            for n, a in enumerate(applications)
        ]
    )
    returns = ReturnRequest.objects.bulk_create(
        [_copy(first, invoice=i, invoice_code=i.code, invoice_number=i.number) for i in invoices]
    )
    if forms:
        [form] = first.red_letter_forms.all()
        RedLetterForm.objects.bulk_create([_copy(form, return_request=r) for r in returns])


def _copy(row, **changes):
    """An unsaved copy of a row, with its own primary key (and unique values) to come."""
    fields = {
        f.attname: getattr(row, f.attname)
        for f in row._meta.concrete_fields
        if not f.primary_key and not f.unique
    }
    for name in changes:
        fields.pop(row._meta.get_field(name).attname, None)
    return type(row)(**fields, **changes)


@pytest.mark.parametrize("count", [1, 500])
def test_the_returns_queue_loads_in_a_fixed_number_of_queries(
    finance_client, count, django_assert_num_queries
):
    _returns(count)
    # Session, user, permissions (2), the count (up to the paginator's exact limit: no second
    # count of the whole table, issue 16 P5), one page with its joins, the rejection reasons
    # offered in the action bar.
    with django_assert_num_queries(7):
        response = finance_client.get("/admin/returns/returnrequest/")
    assert response.status_code == 200
    assert response.context["cl"].result_count == count  # every row is in the list


@pytest.mark.parametrize("count", [1, 60])
def test_the_review_queue_loads_in_a_fixed_number_of_queries(
    reviewer_client, count, django_assert_num_queries
):
    customer = CustomerFactory()
    fund(customer, "10.00")
    first = certified_return(
        issue_invoice(customer, invoice_type=InvoiceType.SPECIAL, amount="10.00", fund_first=False)
    )
    _copies(first, count - 1, forms=True)
    assert RedLetterForm.objects.count() == count
    # One count fewer than before issue 16 P5: no second count of the whole table.
    with django_assert_num_queries(6):
        response = reviewer_client.get("/admin/returns/redletterform/")
    assert response.status_code == 200
    assert response.context["cl"].result_count == count  # every row is in the list


# --- issuing invoices -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("applied_on", "promised"),
    [
        (dt.date(2024, 9, 30), dt.date(2024, 10, 10)),  # National Day: 1-7 October off
        (dt.date(2024, 9, 27), dt.date(2024, 10, 8)),  # Sunday 29 September is a make-up day
        (dt.date(2025, 1, 27), dt.date(2025, 2, 7)),  # Spring Festival: 28 Jan - 4 Feb off
        (dt.date(2025, 3, 7), dt.date(2025, 3, 12)),  # an ordinary weekend
    ],
)
def test_the_promised_issue_date_is_three_chinese_working_days_later(applied_on, promised):
    assert promised_issue_date(applied_on) == promised


def test_the_promised_issue_date_falls_back_to_monday_to_friday_beyond_the_known_years():
    assert promised_issue_date(dt.date(2099, 1, 2)) == dt.date(2099, 1, 7)


@pytest.fixture
def application(customer):
    fund(customer, "500.00")
    return invoice_application_create(
        customer_id=customer.pk,
        invoice_type=InvoiceType.ORDINARY,
        title=customer.name,
        amount="500.00",
        taxpayer_id=VALID_USCC,
        **mailing_fields(),
    )


def test_finance_issues_an_invoice_which_becomes_returnable(finance_client, application):
    url = reverse("admin:invoices_invoiceapplication_issue", args=[application.pk])
    listing = finance_client.get("/admin/invoices/invoiceapplication/?state__exact=pending")
    assert url in listing.content.decode()
    response = finance_client.post(
        url,
        {"code_and_number": "330020113055550001", "courier": "SF", "tracking_number": "SF9"},
        follow=True,
    )
    assert "Invoice 3300201130 55550001 issued and mailed" in messages_of(response)[0]
    application.refresh_from_db()
    assert application.state == ApplicationState.ISSUED
    invoice = Invoice.objects.get(application=application)
    assert (invoice.courier, invoice.tracking_number) == ("SF", "SF9")
    assert submit(invoice).state == ReturnState.SUBMITTED


def test_issuing_a_number_that_exists_shows_the_domain_error(finance_client, application, invoice):
    url = reverse("admin:invoices_invoiceapplication_issue", args=[application.pk])
    response = finance_client.post(
        url,
        {
            "code_and_number": f"{invoice.code} {invoice.number}",
            "courier": "SF",
            "tracking_number": "SF9",
        },
    )
    assert "already exists" in response.content.decode()
    application.refresh_from_db()
    assert application.state == ApplicationState.PENDING


def test_a_reviewer_cannot_issue_invoices(reviewer_client, application):
    url = reverse("admin:invoices_invoiceapplication_issue", args=[application.pk])
    assert reviewer_client.get(url).status_code == 403
    assert reviewer_client.post(url, {"code_and_number": "3300201130 55550001"}).status_code == 403


# --- the overview -----------------------------------------------------------------------------


def test_the_overview_counts_states_ageing_sms_failures_and_failed_returns(customer, finance_user):
    old = submit(issue_invoice(customer))
    ReturnRequest.objects.filter(pk=old.pk).update(
        created_at=old.created_at - dt.timedelta(days=10)
    )
    submit(issue_invoice(customer))
    failed_invoice = issue_invoice(customer)
    failed = submit(failed_invoice)
    log_paper(failed_invoice, finance_user)
    ReturnRequest.objects.filter(pk=failed.pk).update(state=ReturnState.FAILED)
    rejected_invoice = issue_invoice(customer)
    submit(rejected_invoice)
    log_paper(rejected_invoice, finance_user, complete=False)  # texts the rejection
    SmsMessage.objects.update(status=SmsStatus.FAILED)
    overview = back_office_overview()
    counts = {state: n for state, _label, n in overview.counts_by_state}
    assert counts[ReturnState.SUBMITTED] == 2
    assert counts[ReturnState.FAILED] == 1
    assert overview.ageing == [("0-3", 1), ("4-7", 0), ("8-14", 1), ("15+", 0)]
    assert overview.failed_awaiting_retry == 1
    assert overview.sms_failed_last_7_days == SmsMessage.objects.count() >= 1


def test_the_index_shows_the_overview_with_an_ageing_chart(finance_client, invoice):
    submit(invoice)
    page = finance_client.get("/admin/").content.decode()
    assert '<svg role="img"' in page
    assert "Returns waiting for paper, by days waiting: 0-3 days: 1;" in page
    assert "SMS failures in the last 7 days" in page


@pytest.mark.parametrize("count", [1, 500])
def test_the_applications_to_issue_load_in_a_fixed_number_of_queries(
    finance_client, count, django_assert_num_queries
):
    customer = CustomerFactory()
    fund(customer, "1.00")
    first = invoice_application_create(
        customer_id=customer.pk,
        invoice_type=InvoiceType.ORDINARY,
        title=customer.name,
        amount="1.00",
        taxpayer_id=VALID_USCC,
        **mailing_fields(),
    )
    # The rest are copies written in bulk: the list reads only these rows (500 applications
    # through the service, each with its ledger lock, took seconds).
    InvoiceApplication.objects.bulk_create([_copy(first) for _ in range(1, count)])
    assert InvoiceApplication.objects.filter(state=ApplicationState.PENDING).count() == count
    # One count fewer than before issue 16 P5: no second count of the whole table.
    with django_assert_num_queries(6):
        response = finance_client.get("/admin/invoices/invoiceapplication/?state__exact=pending")
    assert response.status_code == 200
    assert response.context["cl"].result_count == count  # every row is in the list


# --- SMS resend (notifications admin) ---------------------------------------------------------


def test_finance_resends_a_failed_sms_and_a_reviewer_cannot(
    client, finance, reviewer, invoice, finance_user
):
    submit(invoice)
    log_paper(invoice, finance_user, complete=False)  # the return is rejected and texted
    sms = SmsMessage.objects.get()
    SmsMessage.objects.filter(pk=sms.pk).update(status=SmsStatus.FAILED)
    data = {"action": "resend", "_selected_action": [sms.pk]}
    client.force_login(reviewer)
    assert client.get("/admin/notifications/smsmessage/").status_code == 403
    client.post("/admin/notifications/smsmessage/", data)
    sms.refresh_from_db()
    assert sms.status == SmsStatus.FAILED
    client.force_login(finance)
    response = client.post("/admin/notifications/smsmessage/", data, follow=True)
    assert "1 message queued for sending again." in messages_of(response)
    sms.refresh_from_db()
    assert sms.status != SmsStatus.FAILED
