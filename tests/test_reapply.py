"""Reapplying after a return (issue 12): the Apply page comes pre-filled from the returned
invoice, with the fields the customer said were wrong marked for checking."""

import html
import re

import pytest
from django.urls import reverse

from invoices.models import InvoiceType
from returns.rules import return_problem_fields
from tests.factories import issue_invoice
from tests.returns_helpers import log_paper, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in(client, customer):
    client.force_login(customer.user)
    return client


@pytest.fixture
def finance(finance_user):
    return finance_user


def completed(invoice, finance, capture, *, problem="title", reason="Wrong title", **kwargs):
    rr = submit(invoice, problem=problem, reason=reason, **kwargs)
    with capture(execute=True):
        log_paper(invoice, finance)
    rr.refresh_from_db()
    assert rr.state == "completed"
    return rr


def reapply_url(invoice) -> str:
    return reverse("billing:apply") + f"?reapply={invoice.pk}"


def field_tag(page: str, name: str) -> str:
    match = re.search(rf'<input\b[^>]*name="{name}"[^>]*>', page)
    assert match, f"no input {name}"
    return match.group(0)


def described_by(page: str, tag: str) -> str:
    """The text of the element an input's aria-describedby names."""
    ids = re.search(r'aria-describedby="([^"]+)"', tag)
    assert ids, f"{tag} has no description"
    texts = []
    for ident in ids.group(1).split():
        found = re.search(rf'id="{ident}"[^>]*>(.*?)</', page, re.S)
        assert found, f"no element {ident}"
        texts.append(" ".join(html.unescape(found.group(1)).split()))
    return " ".join(texts)


# --- the rule: which fields each "what was wrong" answer marks -------------------------------


@pytest.mark.parametrize(
    ("problem", "fields"),
    [
        ("title", ("title",)),
        ("type", ("invoice_type",)),
        ("taxpayer_id", ("taxpayer_id",)),
        ("address", ("registered_address", "registered_phone", "bank_name", "bank_account")),
        ("amount", ("amount",)),
        ("other", ()),
    ],
)
def test_each_problem_marks_its_fields(problem, fields):
    assert return_problem_fields(problem) == fields


# --- the page ---------------------------------------------------------------------------------


def test_a_returned_invoice_prefills_the_apply_page_and_marks_the_wrong_title(
    client_in, customer, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(customer, amount="1280.50")
    completed(invoice, finance, django_capture_on_commit_callbacks)
    page = client_in.get(reapply_url(invoice)).content.decode()

    assert f'value="{customer.name}"' in field_tag(page, "title")
    assert 'value="1280.50"' in field_tag(page, "amount")
    assert 'value="Li Lei"' in field_tag(page, "mailing_recipient")
    title = field_tag(page, "title")
    assert 'aria-invalid="true"' not in title  # marked for checking, not an error yet
    assert "marked-wrong" in title
    assert f"You said this was wrong on invoice {invoice.number}: check it." in described_by(
        page, title
    )
    assert "marked-wrong" not in field_tag(page, "taxpayer_id")
    notice = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert (
        f"Pre-filled from invoice {invoice.number}, which you returned: Invoice title "
        "“Wrong title”." in notice
    )


def test_a_wrong_address_marks_the_four_registration_fields(
    client_in, customer, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    completed(
        invoice,
        finance,
        django_capture_on_commit_callbacks,
        problem="address",
        reason="Old bank",
        certified=False,
    )
    page = client_in.get(reapply_url(invoice)).content.decode()
    for name in ("registered_address", "registered_phone", "bank_name", "bank_account"):
        assert "marked-wrong" in field_tag(page, name)
    assert "marked-wrong" not in field_tag(page, "title")
    assert re.search(r'<input[^>]*name="invoice_type"[^>]*value="special"[^>]*checked', page)


def test_the_completed_return_page_links_to_reapply(
    client_in, customer, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(customer)
    rr = completed(invoice, finance, django_capture_on_commit_callbacks)
    page = client_in.get(reverse("billing:return_detail", args=[rr.pk])).content.decode()
    assert f'href="{html.escape(reapply_url(invoice))}"' in page
    assert "Apply again with these details" in page


def test_an_invoice_still_valid_cannot_be_reapplied_from(client_in, invoice):
    assert client_in.get(reapply_url(invoice)).status_code == 404


def test_another_customers_returned_invoice_is_404(
    client, customer, finance, django_capture_on_commit_callbacks
):
    from tests.factories import CustomerFactory

    invoice = issue_invoice(customer)
    completed(invoice, finance, django_capture_on_commit_callbacks)
    other = CustomerFactory()
    client.force_login(other.user)
    assert client.get(reapply_url(invoice)).status_code == 404


def test_a_malformed_reapply_id_is_404(client_in):
    assert client_in.get(reverse("billing:apply") + "?reapply=abc").status_code == 404


def test_submitting_the_prefilled_form_applies_again(
    client_in, customer, finance, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(customer, amount="300.00")
    completed(invoice, finance, django_capture_on_commit_callbacks)
    page = client_in.get(reapply_url(invoice))
    initial = page.context["form"].initial
    data = {k: v for k, v in initial.items() if v not in (None, "")} | {"title": "Right Title"}
    response = client_in.post(reverse("billing:apply"), data)
    assert response.status_code == 302
    application = customer.applications.order_by("-id").first()
    assert (application.title, str(application.amount)) == ("Right Title", "300.00")
