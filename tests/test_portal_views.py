"""The customer portal through Django's test client: pages, bad input (issue 3) and R12."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from invoices.models import (
    ApplicationState,
    Invoice,
    InvoiceApplication,
    InvoiceState,
    InvoiceType,
    Issuer,
)
from invoices.tax import breakdown_from_total
from returns.models import ReturnRequest, ReturnState
from tests.factories import (
    VALID_USCC,
    CustomerFactory,
    fund,
    issue_invoice,
    mailing_fields,
    marketplace_invoice,
)
from tests.returns_helpers import MINIMAL_PDF, log_paper, pdf_upload, png_bytes, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in(client, customer):
    client.force_login(customer.user)
    return client


# A complete, valid Refund form: what a refusal must be about is the invoice, not the form.
VALID_REFUND = {"problem": "title", "reason_code": "issuing_error", "reason": "x"}


def refund_url(invoice) -> str:
    return reverse("billing:refund", args=[invoice.pk])


# --- Invoice Management ---------------------------------------------------------------------


def test_r1_invoice_management_offers_refund_on_an_issued_provider_invoice(client_in, invoice):
    page = client_in.get("/billing/invoices/").content.decode()
    # A real button (Space and Enter work), of a form that opens the refund page.
    assert f'<form method="get" action="{refund_url(invoice)}" class="inline">' in page
    assert ">Refund</button>" in page
    assert "Operation" in page


def test_r1_a_cloud_market_invoice_says_contact_the_provider_and_has_no_refund(client_in, customer):
    market = marketplace_invoice(customer)
    page = client_in.get("/billing/invoices/").content.decode()
    assert "Issued by Example Market Seller Ltd.: contact the service provider" in page
    assert refund_url(market) not in page


def test_r2_a_row_with_an_open_return_links_to_it_instead_of_refund(client_in, invoice):
    rr = submit(invoice)
    page = client_in.get("/billing/invoices/").content.decode()
    assert reverse("billing:return_detail", args=[rr.pk]) in page
    assert refund_url(invoice) not in page


def test_invoice_management_filters_by_status(client_in, customer, invoice):
    other = issue_invoice(customer)
    submit(other)
    returning = client_in.get("/billing/invoices/?status=returning").content.decode()
    assert other.number in returning
    assert invoice.number not in returning
    voided = client_in.get("/billing/invoices/?status=voided").content.decode()
    assert "No invoices yet." in voided


def test_invoice_management_escapes_what_the_customer_typed_in_its_rows(client_in, invoice):
    # The rows are rendered by Jinja2 (issue 16, P2): it escapes as Django's engine does.
    Invoice.objects.filter(pk=invoice.pk).update(title='<script>alert("x")</script> & Co')
    page = client_in.get("/billing/invoices/").content.decode()
    assert "&lt;script&gt;alert(" in page
    assert "&lt;/script&gt; &amp; Co" in page
    assert "<script>alert" not in page


def test_invoice_management_shows_both_languages_in_its_rows(client_in, invoice):
    rr = submit(invoice)
    client_in.cookies["django_language"] = "zh-hans"
    page = client_in.get("/billing/invoices/").content.decode()
    assert 'data-label="操作"' in page
    assert f'<a href="{reverse("billing:return_detail", args=[rr.pk])}">退票处理中</a>' in page
    client_in.cookies["django_language"] = "en"
    page = client_in.get("/billing/invoices/").content.decode()
    assert 'data-label="Operation"' in page
    assert "Return in progress</a>" in page


def test_invoice_management_is_paginated(client_in, customer):
    _bulk_invoices(customer, 25)
    first = client_in.get("/billing/invoices/")
    assert len(first.context["invoices"]) == 20
    assert "Page 1 of 2" in first.content.decode()
    second = client_in.get("/billing/invoices/?page=2")
    assert len(second.context["invoices"]) == 5


_bulk_numbers = itertools.count(20000000)


def _bulk_invoices(customer, count: int) -> None:
    """Many issued provider invoices, fast: bulk rows (no ledger: this is a rendering test)."""
    applications = InvoiceApplication.objects.bulk_create(
        InvoiceApplication(
            customer=customer,
            invoice_type=InvoiceType.ORDINARY,
            title=customer.name,
            taxpayer_id=VALID_USCC,
            amount="10.00",
            state=ApplicationState.ISSUED,
            **mailing_fields(),
        )
        for _ in range(count)
    )
    now = timezone.now()
    figures = breakdown_from_total(Decimal("10.00"))  # the total each application asked for
    Invoice.objects.bulk_create(
        Invoice(
            customer=customer,
            application=application,
            invoice_type=InvoiceType.ORDINARY,
            title=customer.name,
            **figures.as_fields(),
            code="4400201130",
            number=f"{next(_bulk_numbers):08d}",
            issued_at=now - dt.timedelta(minutes=i),
            issuer=Issuer.PROVIDER,
            issuer_name="Example Cloud",
        )
        for i, application in enumerate(applications)
    )


def test_invoice_management_renders_1000_invoices_in_as_many_queries_as_one(
    client, django_assert_num_queries
):
    one, many = CustomerFactory(), CustomerFactory()
    _bulk_invoices(one, 1)
    _bulk_invoices(many, 1000)
    submit(Invoice.objects.filter(customer=many).first())
    client.force_login(one.user)
    # session, user, customer with its invoiceable amount, its count of invoices and whether it
    # has pending applications (one query, issue 16 P2), page of rows (each row annotated with
    # its return and its count of returns in the same query); neither has pending applications
    # nor earlier returns to read (tests/test_page_queries.py reads them)
    with django_assert_num_queries(4):
        assert client.get("/billing/invoices/").status_code == 200
    client.force_login(many.user)
    with django_assert_num_queries(4):
        response = client.get("/billing/invoices/")
    assert len(response.context["invoices"]) == 20


# --- The Refund page ------------------------------------------------------------------------


def test_r3_the_refund_page_shows_the_mailing_address_and_required_forms(client_in, invoice):
    page = client_in.get(refund_url(invoice)).content.decode()
    assert "311121" in page
    assert "Invoice Returns Desk" in page
    assert "cash on delivery are refused" in page
    assert "Return the invoice form, complete and undamaged." in page
    assert "certified" not in page


def test_r3_a_special_invoice_asks_whether_it_was_certified(client_in, special_invoice):
    page = client_in.get(refund_url(special_invoice)).content.decode()
    assert "Has this invoice been certified?" in page
    assert "the invoice form and the deduction form" in page


def test_refund_submits_a_return_and_redirects_to_its_timeline(client_in, invoice):
    response = client_in.post(
        refund_url(invoice),
        {
            "problem": "title",
            "reason_code": "sales_return",
            "reason": "Wrong title",
            "tracking_number": "SF123",
        },
    )
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert response.status_code == 302
    assert response.url == reverse("billing:return_detail", args=[rr.pk])
    assert (rr.problem, rr.reason_code, rr.reason, rr.tracking_number) == (
        "title",
        "sales_return",
        "Wrong title",
        "SF123",
    )


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "Please say why you are returning this invoice."),
        ("    ", "Please say why you are returning this invoice."),
        ("x" * 501, "The reason is 501 characters long; at most 500 are allowed."),
    ],
    ids=["empty", "blank", "501-characters"],
)
def test_r3_a_bad_reason_is_refused_and_keeps_what_was_entered(client_in, invoice, reason, message):
    response = client_in.post(
        refund_url(invoice),
        {
            "problem": "amount",
            "reason_code": "issuing_error",
            "reason": reason,
            "courier": "SF Express",
            "tracking_number": "SF9",
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert 'value="SF Express"' in page
    assert 'value="SF9"' in page
    assert response.context["form"]["problem"].value() == "amount"
    assert not ReturnRequest.objects.exists()


def _certified_post(upload, **extra) -> dict:
    return {
        "problem": "type",
        "reason_code": "issuing_error",
        "reason": "Should be ordinary",
        "certified": "yes",
        "red_letter_form": upload,
        "red_letter_form_number": "4403012345678901",
        **extra,
    }


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            SimpleUploadedFile("scan.pdf", b"MZ\x90\x00" + b"\x00" * 200, "application/pdf"),
            "This file is not a PDF, JPEG or PNG (its content was checked, not its name).",
        ),
        (SimpleUploadedFile("scan.pdf", b"", "application/pdf"), "The file is empty."),
        (
            SimpleUploadedFile("scan.pdf", MINIMAL_PDF + b"\x00" * (11 * 1024 * 1024)),
            "The file is larger than 10 MB.",
        ),
    ],
    ids=["exe-renamed-pdf", "empty-file", "11-MB-scan"],
)
def test_r3_a_bad_red_letter_form_upload_is_refused_and_keeps_the_form(
    client_in, special_invoice, upload, message, settings
):
    response = client_in.post(refund_url(special_invoice), _certified_post(upload))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert 'value="4403012345678901"' in page
    assert "Should be ordinary" in page
    assert not ReturnRequest.objects.exists()


def test_r3_certified_without_a_form_scan_is_refused(client_in, special_invoice):
    response = client_in.post(
        refund_url(special_invoice), _certified_post(None, red_letter_form="")
    )
    assert response.status_code == 400
    assert "needs the red-letter information form scan" in response.content.decode()


def test_r3_certified_with_a_png_scan_creates_the_return_with_its_form(client_in, special_invoice):
    upload = SimpleUploadedFile("scan.png", png_bytes(), "image/png")
    response = client_in.post(refund_url(special_invoice), _certified_post(upload))
    rr = ReturnRequest.objects.get(invoice=special_invoice)
    assert response.status_code == 302
    assert rr.certified
    assert rr.red_letter_forms.get().content_type == "image/png"


@pytest.mark.parametrize("state", [InvoiceState.VOIDED, InvoiceState.REVERSED])
def test_r1_refund_on_a_voided_or_reversed_invoice_is_refused(client_in, invoice, state):
    Invoice.objects.filter(pk=invoice.pk).update(state=state)
    for response in (
        client_in.get(refund_url(invoice), follow=True),
        client_in.post(refund_url(invoice), VALID_REFUND, follow=True),
    ):
        assert response.redirect_chain[-1][0] == reverse("billing:invoices")
        assert "cannot be returned" in response.content.decode()
    assert not ReturnRequest.objects.exists()


def test_r1_refund_on_a_marketplace_invoice_is_refused(client_in, customer):
    market = marketplace_invoice(customer)
    response = client_in.post(refund_url(market), VALID_REFUND, follow=True)
    assert "contact the service provider" in response.content.decode()
    assert not ReturnRequest.objects.exists()


def test_r2_refund_on_an_already_returning_invoice_shows_the_open_return(client_in, invoice):
    rr = submit(invoice)
    response = client_in.post(refund_url(invoice), {"problem": "title", "reason": "again"})
    assert response.url == reverse("billing:return_detail", args=[rr.pk])
    assert ReturnRequest.objects.count() == 1


def test_r2_two_submits_of_the_same_form_make_one_return(client_in, invoice):
    data = {"problem": "title", "reason_code": "issuing_error", "reason": "Wrong title"}
    first = client_in.post(refund_url(invoice), data)
    second = client_in.post(refund_url(invoice), data, follow=True)
    assert ReturnRequest.objects.count() == 1
    assert second.redirect_chain[-1][0] == first.url
    assert "already has a return in progress" in second.content.decode()


def test_a_refund_post_without_a_csrf_token_is_refused(customer, invoice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(customer.user)
    response = strict.post(refund_url(invoice), VALID_REFUND)
    assert response.status_code == 403
    assert not ReturnRequest.objects.exists()


# --- R12: another customer's ids ------------------------------------------------------------


def test_r12_another_customers_invoice_and_return_are_404_everywhere(client, invoice):
    rr = submit(invoice)
    stranger = CustomerFactory()
    client.force_login(stranger.user)
    urls_get = [
        refund_url(invoice),
        reverse("billing:return_detail", args=[rr.pk]),
    ]
    for url in urls_get:
        response = client.get(url)
        assert response.status_code == 404
        assert invoice.number not in response.content.decode()
    for name in ("billing:return_cancel", "billing:return_tracking", "billing:return_form_upload"):
        assert client.post(reverse(name, args=[rr.pk]), {"tracking_number": "x"}).status_code == 404
    assert client.post(refund_url(invoice), VALID_REFUND).status_code == 404
    rr.refresh_from_db()
    assert rr.state == ReturnState.SUBMITTED


def test_r12_an_uploaded_form_is_served_to_its_owner_only(client, customer, special_invoice):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403012345678901",
    )
    form = rr.red_letter_forms.get()
    url = reverse("billing:return_form_download", args=[rr.pk, form.pk])
    client.force_login(customer.user)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == MINIMAL_PDF
    client.force_login(CustomerFactory().user)
    assert client.get(url).status_code == 404


def test_r12_pages_need_a_log_in(client, invoice):
    response = client.get("/billing/invoices/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


# --- Return detail --------------------------------------------------------------------------


def test_r11_return_detail_shows_the_timeline_with_times(client_in, invoice, finance_user):
    rr = submit(invoice)
    log_paper(invoice, finance_user)
    page = client_in.get(reverse("billing:return_detail", args=[rr.pk]))
    steps = {step.key: step for step in page.context["timeline"]}
    assert steps["submitted"].done
    assert steps["received"].done
    assert steps["received"].at is not None
    assert steps["form"].skipped


def test_r9_the_customer_cancels_a_submitted_return(client_in, invoice):
    rr = submit(invoice)
    response = client_in.post(reverse("billing:return_cancel", args=[rr.pk]), follow=True)
    rr.refresh_from_db()
    assert rr.state == ReturnState.CANCELLED
    assert "Your return has been cancelled." in response.content.decode()


def test_r9_cancel_after_the_paper_arrived_is_refused_with_a_message(
    client_in, invoice, finance_user
):
    rr = submit(invoice)
    log_paper(invoice, finance_user)
    response = client_in.post(reverse("billing:return_cancel", args=[rr.pk]), follow=True)
    rr.refresh_from_db()
    assert rr.state != ReturnState.CANCELLED
    assert "can no longer be cancelled" in response.content.decode()


def test_r5_a_rejected_return_shows_the_rejection_reason(client_in, invoice, finance_user):
    rr = submit(invoice)
    log_paper(invoice, finance_user, complete=False)
    page = client_in.get(reverse("billing:return_detail", args=[rr.pk])).content.decode()
    assert "Rejection reason" in page
    assert "missing the invoice form" in page


def test_the_customer_adds_a_tracking_number_while_the_paper_is_on_its_way(client_in, invoice):
    rr = submit(invoice)
    client_in.post(
        reverse("billing:return_tracking", args=[rr.pk]),
        {"courier": "SF Express", "tracking_number": "SF1234567890"},
    )
    rr.refresh_from_db()
    assert (rr.courier, rr.tracking_number) == ("SF Express", "SF1234567890")


def test_r3_the_customer_replaces_a_pending_red_letter_form(client_in, special_invoice):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403012345678901",
    )
    response = client_in.post(
        reverse("billing:return_form_upload", args=[rr.pk]),
        {
            "upload": SimpleUploadedFile("new.png", png_bytes(), "image/png"),
            "form_number": "4403012345678902",
        },
    )
    assert response.status_code == 302
    assert list(rr.red_letter_forms.values_list("review_state", flat=True)) == [
        "replaced",
        "pending",
    ]


def test_r3_a_bad_replacement_upload_is_refused_and_keeps_the_form_number(
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
        {"upload": SimpleUploadedFile("x.pdf", b"MZ" * 50), "form_number": "4403012345678902"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "its content was checked" in page
    assert 'value="4403012345678902"' in page


def test_r7_after_a_completed_return_the_invoiceable_amount_is_restored(
    client_in, customer, invoice, finance_user, django_capture_on_commit_callbacks
):
    fund(customer, "0.01")  # a known non-zero balance
    before = client_in.get("/billing/invoices/").context["invoiceable_amount"]
    rr = submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    after = client_in.get("/billing/invoices/").context["invoiceable_amount"]
    assert after == before + invoice.total


# --- Apply for an invoice -------------------------------------------------------------------


def _apply_data(**overrides) -> dict:
    return {
        "invoice_type": "ordinary",
        "amount": "100.00",
        "title": "Hangzhou Example Trading Co.",
        "taxpayer_id": VALID_USCC,
        **mailing_fields(),
        **overrides,
    }


def test_r10_applying_for_an_invoice_debits_the_invoiceable_amount(client_in, customer):
    fund(customer, "500.00")
    response = client_in.post(reverse("billing:apply"), _apply_data(amount="120.50"))
    assert response.status_code == 302
    application = InvoiceApplication.objects.get(customer=customer)
    assert str(application.amount) == "120.50"
    page = client_in.get("/billing/invoices/")
    assert str(page.context["invoiceable_amount"]) == "379.50"
    assert page.context["pending_applications"] == [application]
    assert "Applications being issued" in page.content.decode()


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("500.01", "exceeds your invoiceable amount of 500.00"),
        ("-5", "The amount must be greater than zero."),
        ("10.001", "An amount has at most two decimal places (fen)."),
    ],
    ids=["above-invoiceable", "negative", "three-decimals"],
)
def test_r10_a_bad_amount_is_refused_and_keeps_the_application(
    client_in, customer, amount, message
):
    fund(customer, "500.00")
    response = client_in.post(reverse("billing:apply"), _apply_data(amount=amount))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert f'value="{amount}"' in page
    assert 'value="Hangzhou Example Trading Co."' in page
    assert not InvoiceApplication.objects.exists()


def test_r13_a_taxpayer_id_with_a_wrong_check_character_is_refused(client_in, customer):
    fund(customer, "500.00")
    wrong = VALID_USCC[:-1] + ("A" if VALID_USCC[-1] != "A" else "B")
    response = client_in.post(reverse("billing:apply"), _apply_data(taxpayer_id=wrong))
    assert response.status_code == 400
    assert "does not match its check character" in response.content.decode()
    assert f'value="{wrong}"' in response.content.decode()
    assert not InvoiceApplication.objects.exists()


def test_a_saved_profile_fills_the_next_application(client_in, customer):
    fund(customer, "500.00")
    client_in.post(
        reverse("billing:apply"),
        _apply_data(save_profile="on", profile_name="Head office", mailing_recipient="Han Mei"),
    )
    profile = customer.profiles.get()
    assert (profile.name, profile.mailing_recipient) == ("Head office", "Han Mei")
    page = client_in.get(reverse("billing:apply"), {"profile": profile.pk})
    assert page.context["form"].initial["mailing_recipient"] == "Han Mei"
    assert 'value="Han Mei"' in page.content.decode()


def test_r12_another_customers_profile_id_is_404(client, customer):
    from invoices.services import invoice_profile_save

    profile = invoice_profile_save(
        customer_id=customer.pk, name="Secret", invoice_type="ordinary", title="Secret Co."
    )
    client.force_login(CustomerFactory().user)
    response = client.get(reverse("billing:apply"), {"profile": profile.pk})
    assert response.status_code == 404
    assert "Secret Co." not in response.content.decode()


def test_the_apply_page_speaks_chinese(client_in, customer):
    fund(customer, "10.00")
    response = client_in.post(
        reverse("billing:apply"), _apply_data(amount="10.001"), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert "金额最多保留两位小数" in response.content.decode()


def test_r7_after_a_completed_return_applying_again_works_at_once(
    client_in, customer, invoice, finance_user, django_capture_on_commit_callbacks
):
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    response = client_in.post(reverse("billing:apply"), _apply_data(amount=str(invoice.total)))
    assert response.status_code == 302
    assert InvoiceApplication.objects.filter(customer=customer, amount=invoice.total).count() == 2


def test_r11_a_completed_return_shows_every_step_with_its_time(
    client_in, invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    page = client_in.get(reverse("billing:return_detail", args=[rr.pk]))
    steps = {step.key: step for step in page.context["timeline"]}
    assert [key for key, step in steps.items() if step.done] == [
        "submitted",
        "received",
        "outcome",
        "sms",
    ]
    assert steps["form"].skipped
    assert steps["outcome"].label == "Voided in the tax system"
    assert all(steps[key].at is not None for key in ("submitted", "received", "outcome", "sms"))
    assert "Cancel return" not in page.content.decode()


def test_r2_a_double_submit_whose_winner_was_closed_meanwhile_lands_on_the_list(
    client_in, invoice, monkeypatch
):
    from returns import views
    from returns.exceptions import ReturnAlreadyOpen

    def already_open(**kwargs):
        raise ReturnAlreadyOpen()

    monkeypatch.setattr(views, "return_request_submit", already_open)
    monkeypatch.setattr(views, "return_blocking_for_invoice", lambda **kwargs: None)
    response = client_in.post(
        refund_url(invoice),
        {"problem": "title", "reason_code": "issuing_error", "reason": "Wrong title"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("billing:invoices")
