"""Returning several paper invoices at once, in one envelope (issue 12): one return per invoice
(R1, R2, R4 hold for each), one reason, one courier and tracking number, all or nothing."""

import re

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from core.audit.actor import Actor
from core.audit.models import AuditEntry
from invoices.models import InvoiceType
from returns.exceptions import InvalidReturnReason, InvoiceNotEligibleForReturn, ReturnAlreadyOpen
from returns.models import ReturnEnvelope, ReturnRequest, ReturnState
from returns.services import return_envelope_submit
from tests.factories import CustomerFactory, issue_digital_invoice, issue_invoice
from tests.returns_helpers import log_paper, submit

pytestmark = pytest.mark.django_db


def send(customer, invoices, **overrides):
    kwargs = {
        "customer_id": customer.pk,
        "invoice_ids": [inv.pk for inv in invoices],
        "actor": Actor.customer(customer.user, customer.pk),
        "reason": "Wrong title on all of them",
        "problem": "title",
        "reason_code": "issuing_error",
        "courier": "SF Express",
        "tracking_number": "SF1234567890",
        "none_certified": False,
    } | overrides
    return return_envelope_submit(**kwargs)


@pytest.fixture
def three(customer):
    return [issue_invoice(customer, amount="100.00") for _ in range(3)]


def test_r2_one_return_per_invoice_in_one_envelope(customer, three):
    envelope = send(customer, three)
    returns = list(envelope.returns.order_by("invoice_id"))
    assert [rr.invoice_id for rr in returns] == sorted(inv.pk for inv in three)
    assert {rr.state for rr in returns} == {ReturnState.SUBMITTED}
    assert {(rr.courier, rr.tracking_number, rr.reason) for rr in returns} == {
        ("SF Express", "SF1234567890", "Wrong title on all of them")
    }
    assert (envelope.courier, envelope.tracking_number) == ("SF Express", "SF1234567890")
    assert all(rr.events.filter(to_state=ReturnState.SUBMITTED).count() == 1 for rr in returns)


def test_the_envelope_is_audited_with_the_customer_as_actor(customer, three):
    envelope = send(customer, three)
    entry = AuditEntry.objects.get(action="return.envelope_submitted")
    assert (entry.actor_kind, entry.actor_user, entry.object_id) == (
        "customer",
        customer.user,
        str(envelope.pk),
    )
    assert entry.text == "3 paper invoices returned in one envelope (SF1234567890)"


def test_r4_each_invoice_of_the_envelope_is_received_on_its_own(
    customer, three, finance_user, django_capture_on_commit_callbacks
):
    envelope = send(customer, three)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(three[0], finance_user)
    states = dict(envelope.returns.values_list("invoice_id", "state"))
    assert states[three[0].pk] == ReturnState.COMPLETED
    assert states[three[1].pk] == states[three[2].pk] == ReturnState.SUBMITTED


def test_r2_an_invoice_already_being_returned_refuses_the_whole_envelope(customer, three):
    submit(three[1])
    with pytest.raises(ReturnAlreadyOpen, match=three[1].number):
        send(customer, three)
    assert not ReturnEnvelope.objects.exists()
    assert ReturnRequest.objects.count() == 1  # the earlier one only: all or nothing


def test_r12_another_customers_invoice_refuses_the_whole_envelope(customer, three):
    other = issue_invoice(CustomerFactory())
    with pytest.raises(InvoiceNotEligibleForReturn, match="No such invoice"):
        send(customer, [*three, other])
    assert not ReturnRequest.objects.exists()


def test_a_digital_invoice_is_not_mailed_so_not_in_an_envelope(customer, three):
    digital = issue_digital_invoice(customer)
    with pytest.raises(InvalidReturnReason, match="not mailed"):
        send(customer, [three[0], digital])
    assert not ReturnRequest.objects.exists()


def test_a_special_invoice_needs_the_not_certified_answer(customer, three):
    special = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    with pytest.raises(InvalidReturnReason, match="certified"):
        send(customer, [three[0], special])
    envelope = send(customer, [three[0], special], none_certified=True)
    rr = envelope.returns.get(invoice=special)
    assert rr.certified is False


def test_an_envelope_holds_at_least_two_invoices(customer, three):
    with pytest.raises(InvalidReturnReason, match="at least two"):
        send(customer, three[:1])


def test_the_same_invoice_twice_is_one_return(customer, three):
    envelope = send(customer, [three[0], three[1], three[0]])
    assert envelope.returns.count() == 2


def test_an_empty_reason_is_refused_with_the_usual_message(customer, three):
    with pytest.raises(InvalidReturnReason, match="say why"):
        send(customer, three, reason="  ")


def test_an_envelope_never_holds_a_digital_return_in_the_database(customer, three):
    envelope = send(customer, three[:2])
    digital = issue_digital_invoice(customer)
    rr = submit(digital, buyer_booked=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.filter(pk=rr.pk).update(envelope=envelope)


def test_a_paper_return_may_be_put_in_an_envelope_in_the_database(customer, three):
    envelope = send(customer, three[:2])
    rr = submit(three[2])
    ReturnRequest.objects.filter(pk=rr.pk).update(envelope=envelope)
    assert envelope.returns.count() == 3


# --- the portal --------------------------------------------------------------------------------


@pytest.fixture
def client_in(client, customer):
    client.force_login(customer.user)
    return client


URL = "/billing/returns/several/"


def form_data(invoices, **overrides) -> dict:
    return {
        "invoices": [str(inv.pk) for inv in invoices],
        "problem": "title",
        "reason_code": "issuing_error",
        "reason": "Wrong title",
        "courier": "SF Express",
        "tracking_number": "SF99",
    } | overrides


def test_invoice_management_links_to_returning_several(client_in, three):
    page = client_in.get("/billing/invoices/").content.decode()
    assert f'href="{URL}"' in page
    assert "Return several invoices" in page


def test_the_page_lists_only_mailable_returnable_invoices(client_in, customer, three):
    digital = issue_digital_invoice(customer)
    submit(three[2])
    page = client_in.get(URL).content.decode()
    for inv in three[:2]:
        assert f'value="{inv.pk}"' in page
    assert f'value="{three[2].pk}"' not in page  # already being returned
    assert f'value="{digital.pk}"' not in page  # digital: nothing to mail
    assert "What goes in the envelope" in page


def test_submitting_creates_the_envelope_and_shows_its_returns(client_in, three):
    response = client_in.post(URL, form_data(three), follow=True)
    page = response.content.decode()
    envelope = ReturnEnvelope.objects.get()
    assert response.redirect_chain[-1][0] == reverse("billing:envelope_detail", args=[envelope.pk])
    assert "3 invoices returned in one envelope." in page
    for rr in envelope.returns.all():
        assert reverse("billing:return_detail", args=[rr.pk]) in page


def test_choosing_one_invoice_says_to_use_refund(client_in, three):
    response = client_in.post(URL, form_data(three[:1]))
    assert response.status_code == 400
    assert "Choose at least two invoices" in response.content.decode()
    assert not ReturnRequest.objects.exists()


def test_an_unknown_invoice_id_is_refused_and_loses_nothing(client_in, three):
    other = issue_invoice(CustomerFactory())
    response = client_in.post(URL, form_data([*three, other]))
    assert response.status_code == 400
    page = response.content.decode()
    assert "An invoice you chose cannot be returned in an envelope" in page
    assert re.search(r">\s*Wrong title</textarea>", page)  # what was typed is kept
    assert not ReturnRequest.objects.exists()


def test_another_customers_envelope_is_404(client, customer, three):
    envelope = send(customer, three)
    client.force_login(CustomerFactory().user)
    assert client.get(reverse("billing:envelope_detail", args=[envelope.pk])).status_code == 404


def test_a_double_submit_creates_one_envelope(client_in, three):
    client_in.post(URL, form_data(three))
    response = client_in.post(URL, form_data(three))
    assert response.status_code == 400
    assert "it may have just been returned" in response.content.decode()
    assert ReturnEnvelope.objects.count() == 1


def test_finance_sees_the_envelope_and_its_returns_in_the_back_office(
    admin_client, customer, three
):
    envelope = send(customer, three)
    page = admin_client.get(
        reverse("admin:returns_returnenvelope_change", args=[envelope.pk])
    ).content.decode()
    assert "SF1234567890" in page
    for invoice in three:
        assert str(invoice) in page


def test_one_slip_for_the_envelope_holds_each_returns_code(client_in, customer, three):
    envelope = send(customer, three)
    detail = client_in.get(reverse("billing:envelope_detail", args=[envelope.pk])).content.decode()
    slip_url = reverse("billing:envelope_slip", args=[envelope.pk])
    assert f'href="{slip_url}"' in detail
    page = client_in.get(slip_url).content.decode()
    for rr in envelope.returns.all():
        assert f"data-reference>{rr.reference}<" in page
        assert f"QR code of return {rr.reference}" in page
    assert page.count('class="slip-code"') == 3


def test_another_customers_envelope_slip_is_404(client, customer, three):
    envelope = send(customer, three)
    client.force_login(CustomerFactory().user)
    assert client.get(reverse("billing:envelope_slip", args=[envelope.pk])).status_code == 404
