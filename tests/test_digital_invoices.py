"""数电票 (fully digitalized e-invoices): issued through the tax system, returned without paper,
reversed through a red-letter confirmation form, never voided (R3, R4, R6, R7, R8)."""

import datetime as dt
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from pypdf import PdfReader

from core.audit.actor import Actor
from invoices.exceptions import InvalidInvoiceApplication, TaxOutcomeConflict, TaxOutcomeInvalid
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
    TaxOperation,
    TaxRequest,
    TaxRequestState,
)
from invoices.services import invoice_application_create, invoice_issue
from invoices.tax import breakdown_from_total
from invoices.taxsystem.backends.sandbox import DIGITAL_VOID_REFUSED, SandboxTaxSystem
from invoices.taxsystem.interface import RedLetterIssued, ResultStatus, TaxResult
from invoices.taxsystem.services import (
    tax_invoice_issue,
    tax_outcome_record,
    tax_request_open,
    tax_submission,
)
from notifications.models import SmsMessage, SmsPurpose
from returns.exceptions import InvalidReturnReason, InvoiceNotEligibleForReturn
from returns.models import ReturnRequest, ReturnState
from returns.services import (
    mail_receipt_log,
    return_request_await_buyer,
    return_request_buyer_declined,
    return_request_record_outcome,
    return_request_simulate_buyer,
    return_tax_poll,
    returns_repoll_tax,
)
from tests.factories import (
    DIGITAL_INVOICE_PDF,
    VALID_USCC,
    CustomerFactory,
    fund,
    issue_digital_invoice,
    issue_invoice,
)
from tests.returns_helpers import submit

SHANGHAI = ZoneInfo("Asia/Shanghai")
BUYER_FORM = "44030026110000123456"  # a red-letter confirmation form the buyer entered
pytestmark = pytest.mark.django_db


@pytest.fixture
def manual(settings):
    settings.TAX_SYSTEM_BACKEND = "manual"


def refund(invoice, callbacks, **kwargs) -> ReturnRequest:
    """The customer clicks Refund on a digital invoice; what follows commit runs (eagerly)."""
    kwargs.setdefault("reason_code", ReversalReason.ISSUING_ERROR)
    with callbacks(execute=True):
        rr = submit(invoice, **kwargs)
    rr.refresh_from_db()
    return rr


def credits(invoice) -> int:
    return LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED).count()


def sms(rr, purpose) -> int:
    return SmsMessage.objects.filter(related_return_id=rr.pk, purpose=purpose).count()


def digital_red_letter(invoice, **overrides) -> TaxResult:
    figures = breakdown_from_total(invoice.total).negated()
    fields = {
        "code": "",
        "number": "26330000009999999901",
        "issued_on": timezone.localdate(timezone.now(), SHANGHAI),
        "amount": figures.amount,
        "tax_rate": figures.tax_rate,
        "tax": figures.tax,
        "total": figures.total,
        "red_letter_form_number": "",
    } | overrides
    return TaxResult.reversed("ignored", RedLetterIssued(**fields))


# --- the four kinds, and what the database allows --------------------------------------------


def test_each_kind_has_its_label(customer):
    paper = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    digital = issue_digital_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    ordinary = issue_digital_invoice(customer)
    assert paper.kind_label == "Paper VAT special invoice"
    assert digital.kind_label == "Digital invoice (VAT special invoice)"
    assert ordinary.kind_label == "Digital invoice (ordinary invoice)"
    assert str(digital) == digital.number
    assert len(digital.number) == 20


def _raw_invoice(customer, **fields) -> Invoice:
    values = {
        "customer": customer,
        "invoice_type": InvoiceType.ORDINARY,
        "title": "X",
        "amount": Decimal("100.00"),
        "tax_rate": Decimal("0.060"),
        "tax": Decimal("6.00"),
        "total": Decimal("106.00"),
        "issued_at": timezone.now(),
        "issuer": "marketplace",
        "issuer_name": "Seller",
    } | fields
    with transaction.atomic():
        return Invoice.objects.create(**values)


@pytest.mark.parametrize(
    ("medium", "code", "number"),
    [
        (InvoiceMedium.PAPER, "3300201130", "12345678"),
        (InvoiceMedium.PAPER, "033002000311", "12345678"),
        (InvoiceMedium.DIGITAL, "", "26332000000000000001"),
    ],
)
def test_each_kinds_number_format_is_accepted(customer, medium, code, number):
    assert _raw_invoice(customer, medium=medium, code=code, number=number).pk


@pytest.mark.parametrize(
    ("medium", "code", "number"),
    [
        (InvoiceMedium.PAPER, "", "12345678"),  # paper needs its code
        (InvoiceMedium.PAPER, "3300201130", "26332000000000000001"),  # paper number is 8
        (InvoiceMedium.DIGITAL, "3300201130", "26332000000000000001"),  # digital has no code
        (InvoiceMedium.DIGITAL, "", "12345678"),  # digital number is 20
        (InvoiceMedium.DIGITAL, "", "2633200000000000000A"),
    ],
)
def test_each_kinds_number_format_is_enforced_by_the_database(customer, medium, code, number):
    with pytest.raises(IntegrityError, match="invoice_number_format"):
        _raw_invoice(customer, medium=medium, code=code, number=number)


def test_a_digital_number_is_unique(customer):
    _raw_invoice(customer, medium=InvoiceMedium.DIGITAL, code="", number="26332000000000000001")
    with pytest.raises(IntegrityError, match="invoice_code_number_unique"):
        _raw_invoice(customer, medium=InvoiceMedium.DIGITAL, code="", number="26332000000000000001")


def test_r6_the_database_never_holds_a_voided_digital_invoice(digital):
    Invoice.objects.filter(pk=digital.pk).update(state=InvoiceState.REVERSED)  # allowed
    with pytest.raises(IntegrityError, match="invoice_digital_never_voided"), transaction.atomic():
        Invoice.objects.filter(pk=digital.pk).update(state=InvoiceState.VOIDED)


def test_a_digital_invoice_is_not_mailed(digital):
    with pytest.raises(IntegrityError, match="invoice_digital_not_mailed"), transaction.atomic():
        Invoice.objects.filter(pk=digital.pk).update(tracking_number="SF123")


def test_r6_the_database_refuses_a_void_request_for_a_digital_invoice(digital):
    fields = {
        "invoice": digital,
        "medium": InvoiceMedium.DIGITAL,
        "reason_code": ReversalReason.ISSUING_ERROR,
        "backend": "manual",
    }
    TaxRequest.objects.create(serial="RT0000000001", operation=TaxOperation.RED_LETTER, **fields)
    TaxRequest.objects.all().delete()
    with pytest.raises(IntegrityError, match="tax_request_digital_never_void"):
        TaxRequest.objects.create(serial="RT0000000002", operation=TaxOperation.VOID, **fields)


def test_r6_the_database_refuses_a_voided_outcome_on_a_digital_return(digital):
    rr = ReturnRequest.objects.create(
        invoice=digital,
        medium=InvoiceMedium.DIGITAL,
        reason="x",
        submitted_by=digital.customer.user,
    )
    ReturnRequest.objects.filter(pk=rr.pk).update(state=ReturnState.COMPLETED, outcome="reversed")
    with pytest.raises(IntegrityError, match="return_medium_fields"), transaction.atomic():
        ReturnRequest.objects.filter(pk=rr.pk).update(outcome="voided")


@pytest.mark.parametrize(
    ("medium", "form", "ok"),
    [
        (InvoiceMedium.DIGITAL, "44030026110000123456", True),
        (InvoiceMedium.DIGITAL, "4403002611000012", False),  # a paper form's 16 digits
        (InvoiceMedium.PAPER, "4403002611000012", True),
        (InvoiceMedium.PAPER, "44030026110000123456", False),
    ],
)
def test_the_form_number_format_follows_the_medium(digital, medium, form, ok):
    create = lambda: TaxRequest.objects.create(  # noqa: E731
        serial="RT0000000003",
        invoice=digital,
        medium=medium,
        operation=TaxOperation.RED_LETTER,
        reason_code=ReversalReason.ISSUING_ERROR,
        red_letter_form_number=form,
        backend="manual",
    )
    if ok:
        assert create().pk
    else:
        with pytest.raises(IntegrityError, match="tax_request_form_number_format"):
            create()


def test_a_paper_application_needs_its_mailing_address_a_digital_one_does_not(customer):
    fund(customer)
    common = {
        "customer": customer,
        "invoice_type": InvoiceType.ORDINARY,
        "title": "X",
        "amount": Decimal("10.00"),
    }
    assert InvoiceApplication.objects.create(medium=InvoiceMedium.DIGITAL, **common).pk
    with pytest.raises(IntegrityError, match="application_paper_has_mailing_address"):
        InvoiceApplication.objects.create(medium=InvoiceMedium.PAPER, **common)


# --- issuing -----------------------------------------------------------------------------------


def apply_digital(customer, callbacks, **kwargs) -> InvoiceApplication:
    fund(customer)
    fields = {
        "customer_id": customer.pk,
        "invoice_type": InvoiceType.ORDINARY,
        "medium": InvoiceMedium.DIGITAL,
        "title": customer.name,
        "amount": "1060.00",
        "taxpayer_id": VALID_USCC,
        "mailing_recipient": "",
        "mailing_phone": "",
        "mailing_address": "",
    } | kwargs
    with callbacks(execute=True):
        application = invoice_application_create(**fields)
    application.refresh_from_db()
    return application


def test_the_sandbox_issues_a_digital_invoice_at_once_with_a_marked_file(
    customer, django_capture_on_commit_callbacks
):
    application = apply_digital(customer, django_capture_on_commit_callbacks)
    assert application.state == ApplicationState.ISSUED
    invoice = application.invoice
    assert (invoice.medium, invoice.code, len(invoice.number)) == ("digital", "", 20)
    assert (invoice.amount, invoice.tax, invoice.total) == (
        Decimal("1000.00"),
        Decimal("60.00"),
        Decimal("1060.00"),
    )
    with invoice.document.open("rb") as handle:
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(handle.read())).pages)
    assert "SANDBOX" in text
    assert "NOT A VALID INVOICE" in text
    assert invoice.number in text
    assert mail.outbox == []  # no address given, nothing emailed


def test_a_digital_invoice_is_emailed_once_when_an_address_is_given(
    customer, django_capture_on_commit_callbacks
):
    application = apply_digital(
        customer, django_capture_on_commit_callbacks, email="finance@example.com"
    )
    invoice = application.invoice
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["finance@example.com"]
    assert invoice.number in message.subject
    (name, content, mimetype) = message.attachments[0]
    assert (name, mimetype) == (f"{invoice.number}.pdf", "application/pdf")
    assert content.startswith(b"%PDF-")
    invoice.refresh_from_db()
    assert invoice.emailed_at is not None
    from invoices.services import invoice_email_send

    assert invoice_email_send(invoice_id=invoice.pk) is False  # once
    assert len(mail.outbox) == 1


def test_issuing_twice_through_the_sandbox_issues_one_invoice(
    customer, django_capture_on_commit_callbacks
):
    application = apply_digital(customer, django_capture_on_commit_callbacks)
    again = tax_invoice_issue(application_id=application.pk)
    assert again == application.invoice
    assert Invoice.objects.filter(application=application).count() == 1


def test_a_paper_application_is_issued_by_people_even_with_the_sandbox(customer):
    fund(customer)
    application = invoice_application_create(
        customer_id=customer.pk,
        invoice_type=InvoiceType.ORDINARY,
        title="X",
        amount="10.00",
        taxpayer_id=VALID_USCC,
        mailing_recipient="Li Lei",
        mailing_phone="13800138000",
        mailing_address="2 Example Street",
    )
    assert tax_invoice_issue(application_id=application.pk) is None
    application.refresh_from_db()
    assert application.state == ApplicationState.PENDING


def test_with_the_manual_backend_finance_issues_the_digital_invoice(
    manual, customer, django_capture_on_commit_callbacks
):
    application = apply_digital(customer, django_capture_on_commit_callbacks)
    assert application.state == ApplicationState.PENDING  # in finance's queue
    invoice = invoice_issue(
        application_id=application.pk,
        code="",
        number="26332000000000000042",
        document=DIGITAL_INVOICE_PDF,
        document_name="from-the-platform.PDF",
    )
    assert invoice.document.name.endswith("26332000000000000042.pdf")


@pytest.mark.parametrize(
    ("code", "number", "document", "name", "message"),
    [
        ("3300201130", "26332000000000000042", DIGITAL_INVOICE_PDF, "a.pdf", "no code"),
        ("", "12345678", DIGITAL_INVOICE_PDF, "a.pdf", "20-digit"),
        ("", "26332000000000000042", b"", "", "Attach"),
        ("", "26332000000000000042", b"MZ\x90\x00", "a.pdf", "PDF or an OFD"),
        ("", "26332000000000000042", DIGITAL_INVOICE_PDF, "a.exe", "PDF or an OFD"),
    ],
)
def test_a_digital_invoice_is_recorded_only_well_formed_and_with_its_file(
    manual, customer, django_capture_on_commit_callbacks, code, number, document, name, message
):
    application = apply_digital(customer, django_capture_on_commit_callbacks)
    with pytest.raises(InvalidInvoiceApplication, match=message):
        invoice_issue(
            application_id=application.pk,
            code=code,
            number=number,
            document=document,
            document_name=name,
        )
    application.refresh_from_db()
    assert application.state == ApplicationState.PENDING


# --- R3, R4: the return asks what a digital invoice needs and mails nothing --------------------


def test_r3_a_digital_return_asks_whether_the_buyer_booked_it(digital):
    with pytest.raises(InvalidReturnReason, match="booked this invoice"):
        submit(digital)
    assert not ReturnRequest.objects.exists()


def test_r3_a_buyers_form_number_is_20_digits(digital):
    with pytest.raises(InvalidReturnReason, match="20 digits"):
        submit(digital, buyer_form_number="4403002611000012")
    assert not ReturnRequest.objects.exists()


def test_r4_a_digital_return_mails_nothing_and_goes_to_the_tax_system_at_once(
    manual, digital, django_capture_on_commit_callbacks
):
    rr = refund(digital, django_capture_on_commit_callbacks, buyer_booked=False)
    assert rr.state == ReturnState.AWAITING_TAX
    assert (rr.medium, rr.mail_receipt_id, rr.courier) == ("digital", None, "")
    states = list(rr.events.values_list("to_state", flat=True))
    assert states == ["submitted", "processing", "awaiting_tax"]


def test_r4_paper_cannot_be_logged_for_a_digital_invoice(digital, finance_user):
    with pytest.raises(InvoiceNotEligibleForReturn, match="digital"):
        mail_receipt_log(
            invoice_code="",
            invoice_number=digital.number,
            actor=Actor.for_user(finance_user),
            invoice_form_present=True,
            deduction_form_present=False,
            undamaged=True,
        )


# --- R6, R7, R8 with the sandbox ---------------------------------------------------------------


def assert_reversed_once(invoice, rr):
    rr.refresh_from_db()
    invoice.refresh_from_db()
    assert (rr.state, rr.outcome, invoice.state) == ("completed", "reversed", "reversed")
    red = invoice.red_letter_invoice
    assert (red.medium, red.code, len(red.number), len(red.red_letter_form_number)) == (
        "digital",
        "",
        20,
        20,
    )
    assert (red.amount, red.tax, red.total) == (-invoice.amount, -invoice.tax, -invoice.total)
    assert credits(invoice) == 1
    assert sms(rr, SmsPurpose.RETURN_COMPLETED) == 1
    body = SmsMessage.objects.get(related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED)
    assert red.number in body.body
    return red


def test_r6_a_never_booked_digital_invoice_is_reversed_without_the_buyer(
    digital, django_capture_on_commit_callbacks
):
    rr = refund(digital, django_capture_on_commit_callbacks, buyer_booked=False)
    assert_reversed_once(digital, rr)
    assert sms(rr, SmsPurpose.BUYER_CONFIRMATION) == 0
    assert rr.tax_request.buyer_decision == ""


def test_r6_a_digital_invoice_is_reversed_even_in_its_month_of_issue(
    digital, django_capture_on_commit_callbacks
):
    assert timezone.localdate(digital.issued_at, SHANGHAI) == timezone.localdate(
        timezone.now(), SHANGHAI
    )
    rr = refund(digital, django_capture_on_commit_callbacks, buyer_booked=False)
    assert rr.tax_request.operation == TaxOperation.RED_LETTER


def test_r6_the_sandbox_refuses_to_void_a_digital_invoice(digital):
    tax_request = tax_request_open(
        invoice_id=digital.pk, certified=False, reason_code=ReversalReason.ISSUING_ERROR
    )
    forced = tax_submission(tax_request)
    forced = type(forced)(**{**forced.__dict__, "operation": TaxOperation.VOID})
    result = SandboxTaxSystem().submit(forced)
    assert (result.status, result.error) == (ResultStatus.REFUSED, DIGITAL_VOID_REFUSED)


def test_r6_a_void_outcome_is_never_recorded_for_a_digital_invoice(digital):
    tax_request = tax_request_open(
        invoice_id=digital.pk, certified=False, reason_code=ReversalReason.ISSUING_ERROR
    )
    voided = TaxResult.voided(tax_request.serial, timezone.localdate(timezone.now(), SHANGHAI))
    with pytest.raises(TaxOutcomeInvalid):
        tax_outcome_record(
            tax_request_id=tax_request.pk, result=voided, actor=Actor.system("tests")
        )
    digital.refresh_from_db()
    assert digital.state == InvoiceState.ISSUED
    assert credits(digital) == 0


def test_r6_r7_r8_a_booked_digital_invoice_waits_for_the_buyer_then_completes(
    digital_special, django_capture_on_commit_callbacks
):
    rr = refund(digital_special, django_capture_on_commit_callbacks, buyer_booked=True)
    assert rr.state == ReturnState.AWAITING_BUYER
    tax_request = rr.tax_request
    assert tax_request.state == TaxRequestState.AWAITING_BUYER
    assert len(tax_request.red_letter_form_number) == 20
    assert tax_request.confirm_by - tax_request.created_at >= dt.timedelta(hours=72)
    assert credits(digital_special) == 0
    assert sms(rr, SmsPurpose.RETURN_COMPLETED) == 0
    reminder = SmsMessage.objects.get(
        related_return_id=rr.pk, purpose=SmsPurpose.BUYER_CONFIRMATION
    )
    assert tax_request.red_letter_form_number in reminder.body

    with django_capture_on_commit_callbacks(execute=True):
        return_request_simulate_buyer(
            return_request_id=rr.pk, customer_id=digital_special.customer_id, confirmed=True
        )
    red = assert_reversed_once(digital_special, rr)
    assert red.red_letter_form_number == tax_request.red_letter_form_number
    tax_request.refresh_from_db()
    assert tax_request.buyer_decision == BuyerDecision.CONFIRMED
    states = list(rr.events.values_list("to_state", flat=True))
    assert states[-3:] == ["awaiting_buyer", "awaiting_tax", "completed"]
    assert sms(rr, SmsPurpose.BUYER_CONFIRMATION) == 1


def test_a_buyer_who_refuses_ends_the_return_and_a_new_one_may_start(
    digital_special, django_capture_on_commit_callbacks
):
    rr = refund(digital_special, django_capture_on_commit_callbacks, buyer_booked=True)
    with django_capture_on_commit_callbacks(execute=True):
        return_request_simulate_buyer(
            return_request_id=rr.pk, customer_id=digital_special.customer_id, confirmed=False
        )
    rr.refresh_from_db()
    digital_special.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    assert "refused red-letter confirmation form" in rr.rejection_reason
    assert digital_special.state == InvoiceState.ISSUED
    assert credits(digital_special) == 0
    assert sms(rr, SmsPurpose.RETURN_COMPLETED) == 0
    assert rr.tax_request.buyer_decision == BuyerDecision.REFUSED
    again = refund(digital_special, django_capture_on_commit_callbacks, buyer_booked=False)
    assert_reversed_once(digital_special, again)


def test_a_form_the_buyer_does_not_confirm_in_72_hours_lapses(
    digital_special, django_capture_on_commit_callbacks, monkeypatch
):
    rr = refund(digital_special, django_capture_on_commit_callbacks, buyer_booked=True)
    deadline = rr.tax_request.confirm_by
    monkeypatch.setattr(timezone, "now", lambda: deadline - dt.timedelta(minutes=1))
    assert return_tax_poll(return_request_id=rr.pk) is None
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER  # a minute left
    monkeypatch.setattr(timezone, "now", lambda: deadline + dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        returns_repoll_tax(older_than=dt.timedelta(seconds=0))
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    assert "not confirmed within 72 hours" in rr.rejection_reason
    assert rr.tax_request.buyer_decision == BuyerDecision.EXPIRED
    assert credits(digital_special) == 0
    assert sms(rr, SmsPurpose.RETURN_COMPLETED) == 0
    # A late confirmation is not taken: the form has lapsed on the platform too.
    SandboxTaxSystem().simulate_buyer_decision(rr.tax_request.serial, confirmed=True)
    digital_special.refresh_from_db()
    assert digital_special.state == InvoiceState.ISSUED


def test_a_form_the_buyer_entered_is_confirmed_by_the_provider(
    digital_special, django_capture_on_commit_callbacks
):
    rr = refund(digital_special, django_capture_on_commit_callbacks, buyer_form_number=BUYER_FORM)
    assert rr.tax_request.buyer_entered_form
    red = assert_reversed_once(digital_special, rr)
    assert red.red_letter_form_number == BUYER_FORM


def test_only_the_sandbox_can_play_the_buyer(
    manual, digital_special, django_capture_on_commit_callbacks
):
    rr = refund(digital_special, django_capture_on_commit_callbacks, buyer_booked=True)
    return_request_await_buyer(return_request_id=rr.pk, form_number=BUYER_FORM)
    from returns.exceptions import ReturnStateConflict

    with pytest.raises((TaxOutcomeConflict, ReturnStateConflict), match="sandbox"):
        return_request_simulate_buyer(
            return_request_id=rr.pk, customer_id=digital_special.customer_id, confirmed=True
        )


def test_another_customer_cannot_play_the_buyer_of_my_return(
    digital_special, django_capture_on_commit_callbacks
):
    rr = refund(digital_special, django_capture_on_commit_callbacks, buyer_booked=True)
    other = CustomerFactory()
    from returns.exceptions import ReturnStateConflict

    with pytest.raises(ReturnStateConflict, match="No such return"):
        return_request_simulate_buyer(return_request_id=rr.pk, customer_id=other.pk, confirmed=True)
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER


# --- the manual backend: finance records the form, the buyer's decision, the red letter --------


def test_manual_a_never_booked_invoice_is_recorded_with_its_form_and_red_letter(
    manual, digital, django_capture_on_commit_callbacks
):
    rr = refund(digital, django_capture_on_commit_callbacks, buyer_booked=False)
    with pytest.raises(TaxOutcomeInvalid, match="20-digit number of the red-letter confirmation"):
        return_request_record_outcome(return_request_id=rr.pk, result=digital_red_letter(digital))
    with django_capture_on_commit_callbacks(execute=True):
        return_request_record_outcome(
            return_request_id=rr.pk,
            result=digital_red_letter(digital, red_letter_form_number=BUYER_FORM),
        )
    red = assert_reversed_once(digital, rr)
    assert red.red_letter_form_number == BUYER_FORM


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"code": "3300262130"}, "no code"),
        ({"number": "61000001"}, "20 digits"),
        ({"total": Decimal("-1.00")}, "negated"),
    ],
)
def test_manual_a_digital_red_letter_invoice_is_validated(
    manual, digital, django_capture_on_commit_callbacks, overrides, message
):
    rr = refund(digital, django_capture_on_commit_callbacks, buyer_booked=False)
    result = digital_red_letter(digital, red_letter_form_number=BUYER_FORM, **overrides)
    with pytest.raises(TaxOutcomeInvalid, match=message):
        return_request_record_outcome(return_request_id=rr.pk, result=result)
    assert credits(digital) == 0


def test_manual_a_booked_invoice_waits_for_the_buyer_then_finance_records_the_red_letter(
    manual, digital_special, django_capture_on_commit_callbacks
):
    rr = refund(digital_special, django_capture_on_commit_callbacks, buyer_booked=True)
    # Its red-letter invoice cannot be recorded before the buyer had the form.
    with pytest.raises(TaxOutcomeInvalid, match="confirmed by the buyer first"):
        return_request_record_outcome(
            return_request_id=rr.pk,
            result=digital_red_letter(digital_special, red_letter_form_number=BUYER_FORM),
        )
    entered = TaxRequest.objects.get(pk=rr.tax_request_id).created_at
    with django_capture_on_commit_callbacks(execute=True):
        return_request_await_buyer(
            return_request_id=rr.pk, form_number=BUYER_FORM, entered_at=entered
        )
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER
    assert rr.tax_request.confirm_by == entered + dt.timedelta(hours=72)
    with django_capture_on_commit_callbacks(execute=True):
        return_request_record_outcome(
            return_request_id=rr.pk, result=digital_red_letter(digital_special)
        )
    red = assert_reversed_once(digital_special, rr)
    assert red.red_letter_form_number == BUYER_FORM


def test_manual_a_lapse_is_recorded_only_after_the_deadline(
    manual, digital_special, django_capture_on_commit_callbacks
):
    rr = refund(digital_special, django_capture_on_commit_callbacks, buyer_booked=True)
    return_request_await_buyer(return_request_id=rr.pk, form_number=BUYER_FORM)
    with pytest.raises(TaxOutcomeInvalid, match="has not lapsed yet"):
        return_request_buyer_declined(return_request_id=rr.pk, expired=True)
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_BUYER
    return_request_buyer_declined(return_request_id=rr.pk, expired=False)
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    assert TaxRequest.objects.get(pk=rr.tax_request_id).state == TaxRequestState.REFUSED


def test_manual_a_form_number_recorded_for_another_invoice_is_refused(
    manual, customer, django_capture_on_commit_callbacks
):
    first = issue_digital_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    second = issue_digital_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    rr1 = refund(first, django_capture_on_commit_callbacks, buyer_booked=True)
    rr2 = refund(second, django_capture_on_commit_callbacks, buyer_booked=True)
    return_request_await_buyer(return_request_id=rr1.pk, form_number=BUYER_FORM)
    with pytest.raises(TaxOutcomeInvalid, match="another invoice"):
        return_request_await_buyer(return_request_id=rr2.pk, form_number=BUYER_FORM)


def test_the_red_letter_rows_medium_is_the_originals(digital, django_capture_on_commit_callbacks):
    refund(digital, django_capture_on_commit_callbacks, buyer_booked=False)
    assert list(RedLetterInvoice.objects.values_list("medium", flat=True)) == ["digital"]


def test_without_a_mail_server_a_digital_invoice_is_not_emailed_and_stays_downloadable(
    customer, django_capture_on_commit_callbacks, settings
):
    settings.INVOICE_EMAIL_ENABLED = False
    application = apply_digital(
        customer, django_capture_on_commit_callbacks, email="finance@example.com"
    )
    assert mail.outbox == []
    invoice = application.invoice
    assert invoice.emailed_at is None
    assert invoice.document


@pytest.mark.parametrize(
    ("medium", "code", "number", "form", "constraint"),
    [
        (InvoiceMedium.DIGITAL, "", "26330000009999999901", "44030026110000123456", None),
        (InvoiceMedium.PAPER, "3300262130", "61000001", "", None),
        (InvoiceMedium.PAPER, "3300262130", "61000001", "4403002611000012", None),
        (
            InvoiceMedium.DIGITAL,
            "3300262130",
            "26330000009999999901",
            "44030026110000123456",
            "red_letter_number_format",
        ),
        (InvoiceMedium.DIGITAL, "", "61000001", "44030026110000123456", "red_letter_number_format"),
        (InvoiceMedium.PAPER, "", "26330000009999999901", "", "red_letter_number_format"),
        (InvoiceMedium.DIGITAL, "", "26330000009999999901", "", "red_letter_form_number_format"),
        (
            InvoiceMedium.DIGITAL,
            "",
            "26330000009999999901",
            "4403002611000012",
            "red_letter_form_number_format",
        ),
        (
            InvoiceMedium.PAPER,
            "3300262130",
            "61000001",
            "44030026110000123456",
            "red_letter_form_number_format",
        ),
    ],
)
def test_a_red_letter_invoices_numbers_follow_its_medium(
    digital, medium, code, number, form, constraint
):
    figures = breakdown_from_total(digital.total).negated()
    create = lambda: RedLetterInvoice.objects.create(  # noqa: E731
        original=digital,
        medium=medium,
        code=code,
        number=number,
        red_letter_form_number=form,
        issued_on=timezone.localdate(timezone.now(), SHANGHAI),
        **figures.as_fields(),
    )
    if constraint is None:
        assert create().pk
    else:
        with pytest.raises(IntegrityError, match=constraint):
            create()
