"""Every SMS the customer receives, in English and Chinese, fits one segment (R8)."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.audit.actor import Actor
from notifications.models import SmsMessage, SmsPurpose
from notifications.segments import fits_one_segment, segment_units
from returns.services import red_letter_form_review, return_request_reject
from tests.factories import CustomerFactory, UserFactory, issue_invoice
from tests.returns_helpers import MINIMAL_PDF, log_paper, submit

pytestmark = pytest.mark.django_db

LONG_REASON = (
    "The title on the returned invoice does not match the registered company name and the "
    "bank account number is missing two digits; please check your profile. "
) * 3  # about 465 characters, the kind a busy clerk pastes


@pytest.fixture(params=["en", "zh-hans"])
def customer(request):
    return CustomerFactory(language=request.param)


def special(customer, **kwargs):
    return issue_invoice(
        customer,
        invoice_type="special",
        amount="12800.00",
        issued_at=dt.datetime(2026, 9, 30, 16, tzinfo=dt.UTC),
        **kwargs,
    )


def body(purpose: str) -> str:
    return SmsMessage.objects.get(purpose=purpose).body


def assert_one_segment(text: str, number: str) -> None:
    assert fits_one_segment(text), (segment_units(text), text)
    assert number in text


def test_r8_the_completed_text_fits_one_segment(customer, django_capture_on_commit_callbacks):
    invoice = special(customer)
    submit(invoice, certified=False)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, UserFactory(is_staff=True))
    text = body(SmsPurpose.RETURN_COMPLETED)
    assert_one_segment(text, invoice.number)
    assert "12800.00" in text


def test_r8_the_paper_received_text_fits_one_segment(customer, django_capture_on_commit_callbacks):
    invoice = special(customer)
    submit(invoice, certified=True)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, UserFactory(is_staff=True))
    assert_one_segment(body(SmsPurpose.RETURN_RECEIVED), invoice.number)


def test_r8_a_rejection_with_a_long_reason_is_shortened_to_one_segment(customer):
    invoice = special(customer)
    rr = submit(invoice, certified=False)
    return_request_reject(
        return_request_id=rr.pk,
        actor=Actor.for_user(UserFactory(is_staff=True)),
        reason=LONG_REASON,
    )
    text = body(SmsPurpose.RETURN_REJECTED)
    assert_one_segment(text, invoice.number)
    assert "The title on the returned invoice" in text
    assert "..." in text
    rr.refresh_from_db()
    assert rr.rejection_reason == LONG_REASON.strip()  # the portal shows the whole reason


def test_r8_incomplete_paper_is_explained_in_the_customers_language(customer):
    invoice = special(customer)
    rr = submit(invoice, certified=False)
    log_paper(invoice, UserFactory(is_staff=True), deduction_form_present=False)
    rr.refresh_from_db()
    expected = "抵扣联" if customer.language == "zh-hans" else "deduction form"
    assert expected in rr.rejection_reason
    assert expected in body(SmsPurpose.RETURN_REJECTED)
    assert_one_segment(body(SmsPurpose.RETURN_REJECTED), invoice.number)


def test_r8_a_form_rejection_with_a_long_reason_is_shortened_to_one_segment(customer):
    invoice = special(customer)
    rr = submit(
        invoice,
        certified=True,
        red_letter_form=SimpleUploadedFile("f.pdf", MINIMAL_PDF),
        red_letter_form_number="4403202612000011",
    )
    red_letter_form_review(
        red_letter_form_id=rr.red_letter_forms.get().pk,
        reviewer=Actor.for_user(UserFactory(is_staff=True)),
        approve=False,
        reason=LONG_REASON,
    )
    text = body(SmsPurpose.FORM_REJECTED)
    assert_one_segment(text, invoice.number)
    assert ("upload it again" in text) or ("重新上传" in text)
