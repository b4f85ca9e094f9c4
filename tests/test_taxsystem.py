"""The tax-system boundary (R6, R7, R8): the sandbox platform's rules, the request/outcome flow
through both backends, validation of what finance records, retries and refusals."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import sql
from core.audit.actor import Actor
from core.audit.models import AuditEntry
from invoices.exceptions import TaxOutcomeConflict, TaxOutcomeInvalid
from invoices.models import (
    InvoiceState,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
    RedLetterInvoice,
    ReversalReason,
    TaxOperation,
    TaxOutcomeCorrection,
    TaxRequest,
    TaxRequestState,
    TaxSandboxOperation,
)
from invoices.tax import breakdown_from_total, money_as_written
from invoices.taxsystem.backends.sandbox import (
    FIRST_NUMBER,
    RED_LETTER_CODES,
    SandboxTaxSystem,
)
from invoices.taxsystem.interface import (
    RedLetterIssued,
    ResultStatus,
    TaxResult,
    TaxSystemTransientError,
    get_tax_system,
)
from invoices.taxsystem.services import (
    tax_outcome_record,
    tax_request_open,
    tax_submission,
)
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnRequest, ReturnState
from returns.services import (
    return_request_correct_outcome,
    return_request_process,
    return_request_record_outcome,
    return_request_retry,
    return_tax_submit,
    returns_repoll_tax,
)
from tests.factories import UserFactory, issue_invoice, take_return_credit
from tests.returns_helpers import (
    assert_returned_exactly_once,
    log_paper,
    pdf_upload,
    submit,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BUYER_FORM = "4403262611000123"
pytestmark = pytest.mark.django_db


def last_month() -> dt.datetime:
    first = timezone.localtime(timezone.now(), SHANGHAI).replace(day=1, hour=12)
    return first - dt.timedelta(days=20)


def open_request(invoice, *, certified=False, form=""):
    return tax_request_open(
        invoice_id=invoice.pk,
        certified=certified,
        reason_code=ReversalReason.ISSUING_ERROR,
        buyer_form_number=form,
    )


def void_submission(invoice, *, certified=False):
    """A void request as the platform would receive it, whatever R6 would have decided."""
    tax_request = TaxRequest(
        serial="RTTEST0000000001",
        invoice=invoice,
        operation=TaxOperation.VOID,
        reason_code=ReversalReason.ISSUING_ERROR,
        buyer_certified=certified,
        backend="sandbox",
    )
    return tax_submission(tax_request)


def red_letter(invoice, **overrides) -> TaxResult:
    """The red-letter invoice as the tax system would print it for ``invoice``."""
    figures = breakdown_from_total(invoice.total).negated()
    fields = {
        "code": "3300262130",
        "number": "61000001",
        "issued_on": timezone.localdate(timezone.now(), SHANGHAI),
        "amount": figures.amount,
        "tax_rate": figures.tax_rate,
        "tax": figures.tax,
        "total": figures.total,
    } | overrides
    return TaxResult.reversed("ignored", RedLetterIssued(**fields))


@pytest.fixture
def manual(settings):
    settings.TAX_SYSTEM_BACKEND = "manual"


def awaiting(invoice, finance_user, django_capture_on_commit_callbacks, **submit_kwargs):
    """Bring a return of ``invoice`` to *awaiting the tax system*."""
    submit(invoice, **submit_kwargs)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert rr.state == ReturnState.AWAITING_TAX
    return rr


# The backend setting -------------------------------------------------------------------------


def test_the_backend_is_chosen_by_the_setting(settings):
    settings.TAX_SYSTEM_BACKEND = "manual"
    assert get_tax_system().records_by_hand
    settings.TAX_SYSTEM_BACKEND = "sandbox"
    assert not get_tax_system().records_by_hand


def test_an_unknown_backend_is_refused_with_the_choices(settings):
    settings.TAX_SYSTEM_BACKEND = "fax"
    with pytest.raises(ImproperlyConfigured, match="manual, sandbox"):
        get_tax_system()


# The sandbox platform's rules ----------------------------------------------------------------


def test_r6_sandbox_voids_a_paper_invoice_in_its_month_of_issue(invoice):
    result = SandboxTaxSystem().submit(void_submission(invoice))
    assert result.status == ResultStatus.DONE
    assert result.voided_on == timezone.localdate(timezone.now(), SHANGHAI)


def test_r6_sandbox_refuses_to_void_an_invoice_of_an_earlier_month(customer):
    invoice = issue_invoice(customer, issued_at=last_month())
    result = SandboxTaxSystem().submit(void_submission(invoice))
    assert result.status == ResultStatus.REFUSED
    assert "month of issue" in result.error


def test_r6_sandbox_refuses_to_void_a_certified_invoice(special_invoice):
    result = SandboxTaxSystem().submit(void_submission(special_invoice, certified=True))
    assert result.status == ResultStatus.REFUSED
    assert "certification" in result.error


def test_r6_sandbox_refuses_a_special_reversal_without_a_form(customer):
    invoice = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL, issued_at=last_month())
    tax_request = open_request(invoice)
    submission = tax_submission(tax_request)
    without_form = submission.__class__(**{**submission.__dict__, "seller_files_form": False})
    result = SandboxTaxSystem().submit(without_form)
    assert result.status == ResultStatus.REFUSED
    assert "red-letter information form" in result.error


def test_r6_sandbox_files_the_sellers_form_for_an_earlier_month_uncertified_special(customer):
    invoice = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL, issued_at=last_month())
    tax_request = open_request(invoice)
    assert (tax_request.operation, tax_request.seller_files_form) == ("red_letter", True)
    result = SandboxTaxSystem().submit(tax_submission(tax_request))
    assert result.red_letter is not None
    form_number = result.red_letter.red_letter_form_number
    assert len(form_number) == 16
    assert form_number.isdigit()


def test_r6_sandbox_reverses_against_the_buyers_form_with_numbers_from_its_own_range(
    special_invoice,
):
    tax_request = open_request(special_invoice, certified=True, form=BUYER_FORM)
    result = SandboxTaxSystem().submit(tax_submission(tax_request))
    red = result.red_letter
    assert red is not None
    assert red.red_letter_form_number == BUYER_FORM
    assert red.code == RED_LETTER_CODES[InvoiceType.SPECIAL]
    assert int(red.number) > FIRST_NUMBER
    assert (red.amount, red.tax, red.total) == (
        -special_invoice.amount,
        -special_invoice.tax,
        -special_invoice.total,
    )


def test_sandbox_submitting_the_same_serial_twice_acts_once(customer):
    invoice = issue_invoice(customer, issued_at=last_month())
    submission = tax_submission(open_request(invoice))
    first, second = SandboxTaxSystem().submit(submission), SandboxTaxSystem().submit(submission)
    assert first == second
    assert TaxSandboxOperation.objects.get(serial=submission.serial).attempts == 2


def test_sandbox_answers_after_its_delay(settings, invoice):
    settings.TAX_SANDBOX_DELAY_SECONDS = 60
    submission = void_submission(invoice)
    assert SandboxTaxSystem().submit(submission).status == ResultStatus.PENDING
    assert SandboxTaxSystem().query(submission.serial).status == ResultStatus.PENDING
    TaxSandboxOperation.objects.filter(serial=submission.serial).update(
        ready_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert SandboxTaxSystem().query(submission.serial).status == ResultStatus.DONE


def test_sandbox_fails_transiently_on_demand_then_answers(settings, invoice):
    settings.TAX_SANDBOX_FAIL = "transient:2"
    submission = void_submission(invoice)
    for _attempt in range(2):
        with pytest.raises(TaxSystemTransientError, match="busy"):
            SandboxTaxSystem().submit(submission)
    assert SandboxTaxSystem().submit(submission).status == ResultStatus.DONE


def test_sandbox_refuses_permanently_on_demand(settings, invoice):
    settings.TAX_SANDBOX_FAIL = "permanent"
    result = SandboxTaxSystem().submit(void_submission(invoice))
    assert result.status == ResultStatus.REFUSED


# Opening a request (R6) ----------------------------------------------------------------------


def test_r6_the_request_carries_everything_the_tax_system_needs(special_invoice):
    submission = tax_submission(open_request(special_invoice, certified=True, form=BUYER_FORM))
    original = submission.original
    assert (original.code, original.number) == (special_invoice.code, special_invoice.number)
    assert original.buyer_taxpayer_id == special_invoice.customer.taxpayer_id
    assert (original.amount, original.tax_rate, original.tax, original.total) == (
        special_invoice.amount,
        special_invoice.tax_rate,
        special_invoice.tax,
        special_invoice.total,
    )
    assert submission.operation == TaxOperation.RED_LETTER
    assert submission.red_letter_form_number == BUYER_FORM
    assert submission.reason_code == ReversalReason.ISSUING_ERROR


def test_r6_opening_twice_returns_the_pending_request(invoice):
    first, second = open_request(invoice), open_request(invoice)
    assert first.pk == second.pk
    assert TaxRequest.objects.filter(invoice=invoice).count() == 1


def test_r6_one_live_request_per_invoice_is_enforced_by_the_database(invoice):
    first = open_request(invoice)
    duplicate = {
        "invoice": invoice,
        "operation": first.operation,
        "reason_code": first.reason_code,
        "backend": "manual",
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        TaxRequest.objects.create(serial="RTDUPLICATE00001", **duplicate)
    TaxRequest.objects.filter(pk=first.pk).update(
        state=TaxRequestState.REFUSED, error="refused", completed_at=timezone.now()
    )
    assert TaxRequest.objects.create(serial="RTAFTERREFUSAL01", **duplicate).pk


def test_r6_a_certified_special_invoice_needs_the_buyers_16_digit_form(special_invoice):
    with pytest.raises(TaxOutcomeInvalid, match="16-digit"):
        open_request(special_invoice, certified=True, form="12345")


# Recording the outcome (R6, R7, R8) with the manual backend ----------------------------------


def test_r7_before_the_outcome_is_recorded_nothing_is_credited_and_no_success_sms(
    manual, invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.ISSUED
    assert rr.tax_request.state == TaxRequestState.PENDING
    assert not LedgerEntry.objects.filter(kind=LedgerKind.INVOICE_RETURNED).exists()
    assert not SmsMessage.objects.filter(purpose=SmsPurpose.RETURN_COMPLETED).exists()


def test_r6_r7_r8_finance_records_the_red_letter_invoice_and_the_return_completes(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(customer, issued_at=last_month())
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        return_request_record_outcome(
            return_request_id=rr.pk, result=red_letter(invoice), actor=Actor.for_user(finance_user)
        )
    rr = assert_returned_exactly_once(invoice, outcome="reversed")
    red = RedLetterInvoice.objects.get(original=invoice)
    assert (red.code, red.number, red.tax_request_id) == (
        "3300262130",
        "61000001",
        rr.tax_request_id,
    )
    assert rr.tax_request.recorded_by == finance_user
    sms = SmsMessage.objects.get(purpose=SmsPurpose.RETURN_COMPLETED)
    assert "61000001" in sms.body
    assert money_as_written(invoice.total) in sms.body  # ¥1,000.00: with its currency


def test_r6_finance_records_a_void_with_its_date(
    manual, invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    today = timezone.localdate(timezone.now(), SHANGHAI)
    with django_capture_on_commit_callbacks(execute=True):
        return_request_record_outcome(
            return_request_id=rr.pk,
            result=TaxResult.voided("x", today),
            actor=Actor.for_user(finance_user),
        )
    rr = assert_returned_exactly_once(invoice, outcome="voided")
    assert rr.tax_request.voided_on == today


def test_r6_recording_the_same_outcome_twice_is_a_no_op(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(customer, issued_at=last_month())
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    for _click in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            return_request_record_outcome(
                return_request_id=rr.pk,
                result=red_letter(invoice),
                actor=Actor.for_user(finance_user),
            )
    assert_returned_exactly_once(invoice, outcome="reversed")


def test_r6_a_different_second_outcome_is_refused(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(customer, issued_at=last_month())
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    return_request_record_outcome(
        return_request_id=rr.pk, result=red_letter(invoice), actor=Actor.for_user(finance_user)
    )
    with pytest.raises(TaxOutcomeConflict):
        return_request_record_outcome(
            return_request_id=rr.pk,
            result=red_letter(invoice, number="61000002"),
            actor=Actor.for_user(finance_user),
        )
    assert RedLetterInvoice.objects.get(original=invoice).number == "61000001"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"total": Decimal("-1.00")}, "negated"),
        ({"tax": Decimal("0.00")}, "negated"),
        ({"number": "6100001"}, "8 digits"),
        ({"number": "6100000A"}, "8 digits"),
        ({"code": "33002621"}, "10 or 12 digits"),
        ({"issued_on": dt.date(2020, 1, 1)}, "between"),
        ({"red_letter_form_number": "4403262611000123"}, "without a form number"),
    ],
)
def test_r6_a_bad_red_letter_entry_is_refused_with_a_reason_and_nothing_saved(
    manual, customer, finance_user, django_capture_on_commit_callbacks, overrides, message
):
    invoice = issue_invoice(customer, issued_at=last_month())
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    with pytest.raises(TaxOutcomeInvalid, match=message):
        return_request_record_outcome(
            return_request_id=rr.pk,
            result=red_letter(invoice, **overrides),
            actor=Actor.for_user(finance_user),
        )
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_TAX
    assert not RedLetterInvoice.objects.exists()
    assert not LedgerEntry.objects.filter(kind=LedgerKind.INVOICE_RETURNED).exists()


def test_r6_a_red_letter_number_already_used_is_refused(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    taken = issue_invoice(customer)
    invoice = issue_invoice(customer, issued_at=last_month())
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    with pytest.raises(TaxOutcomeInvalid, match="already recorded"):
        return_request_record_outcome(
            return_request_id=rr.pk,
            result=red_letter(invoice, code=taken.code, number=taken.number),
            actor=Actor.for_user(finance_user),
        )


def test_r6_a_red_letter_number_used_by_another_red_letter_invoice_is_refused(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    first = issue_invoice(customer, issued_at=last_month())
    second = issue_invoice(customer, issued_at=last_month())
    first_rr = awaiting(first, finance_user, django_capture_on_commit_callbacks)
    second_rr = awaiting(second, finance_user, django_capture_on_commit_callbacks)
    return_request_record_outcome(
        return_request_id=first_rr.pk, result=red_letter(first), actor=Actor.for_user(finance_user)
    )
    with pytest.raises(TaxOutcomeInvalid, match="already recorded"):
        return_request_record_outcome(
            return_request_id=second_rr.pk,
            result=red_letter(second),
            actor=Actor.for_user(finance_user),
        )
    second_rr.refresh_from_db()
    assert second_rr.state == ReturnState.AWAITING_TAX


def test_r6_a_void_outside_the_month_of_issue_is_refused(
    manual, invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    next_month = timezone.localdate(timezone.now(), SHANGHAI).replace(day=1) + dt.timedelta(40)
    with pytest.raises(TaxOutcomeInvalid, match="month of issue"):
        return_request_record_outcome(
            return_request_id=rr.pk,
            result=TaxResult.voided("x", next_month),
            actor=Actor.for_user(finance_user),
        )


def test_r6_a_void_recorded_for_a_red_letter_request_is_refused(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(customer, issued_at=last_month())
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    with pytest.raises(TaxOutcomeInvalid, match="red-letter invoice"):
        return_request_record_outcome(
            return_request_id=rr.pk,
            result=TaxResult.voided("x", timezone.localdate(timezone.now(), SHANGHAI)),
            actor=Actor.for_user(finance_user),
        )


def test_r6_the_sellers_form_number_is_required_for_an_earlier_month_special(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL, issued_at=last_month())
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks, certified=False)
    assert rr.tax_request.seller_files_form
    with pytest.raises(TaxOutcomeInvalid, match="seller filed"):
        return_request_record_outcome(
            return_request_id=rr.pk, result=red_letter(invoice), actor=Actor.for_user(finance_user)
        )
    return_request_record_outcome(
        return_request_id=rr.pk,
        result=red_letter(invoice, red_letter_form_number="4403262611000999"),
        actor=Actor.for_user(finance_user),
    )
    red = RedLetterInvoice.objects.get(original=invoice)
    assert red.red_letter_form_number == "4403262611000999"


def test_r6_a_certified_reversal_carries_the_buyers_form_number(
    manual, special_invoice, finance_user, django_capture_on_commit_callbacks
):
    from returns.services import red_letter_form_review

    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number=BUYER_FORM,
    )
    with django_capture_on_commit_callbacks(execute=True):
        red_letter_form_review(
            red_letter_form_id=rr.red_letter_forms.get().pk,
            reviewer=Actor.for_user(UserFactory(username="reviewer", is_staff=True)),
            approve=True,
        )
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_TAX
    assert rr.tax_request.red_letter_form_number == BUYER_FORM
    return_request_record_outcome(
        return_request_id=rr.pk,
        result=red_letter(special_invoice),
        actor=Actor.for_user(finance_user),
    )
    assert RedLetterInvoice.objects.get(original=special_invoice).red_letter_form_number == (
        BUYER_FORM
    )


# R4: a certified special invoice needs its approved form, not its paper ----------------------


def test_r4_a_certified_special_invoice_proceeds_on_the_approved_form_without_paper(
    special_invoice, django_capture_on_commit_callbacks
):
    from returns.services import red_letter_form_review

    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number=BUYER_FORM,
    )
    with django_capture_on_commit_callbacks(execute=True):
        red_letter_form_review(
            red_letter_form_id=rr.red_letter_forms.get().pk,
            reviewer=Actor.for_user(UserFactory(username="reviewer", is_staff=True)),
            approve=True,
        )
    rr = assert_returned_exactly_once(special_invoice, outcome="reversed")
    assert rr.mail_receipt is None


def test_r4_an_uncertified_return_still_waits_for_its_paper(invoice):
    rr = submit(invoice)
    return_request_process(return_request_id=rr.pk)  # a stray task changes nothing
    rr.refresh_from_db()
    assert rr.state == ReturnState.SUBMITTED


# Retries and refusals ------------------------------------------------------------------------


def test_r6_a_permanent_refusal_fails_the_return_visibly_and_staff_retry_it(
    settings, invoice, finance_user, django_capture_on_commit_callbacks
):
    settings.TAX_SANDBOX_FAIL = "permanent"
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    rr = ReturnRequest.objects.get(invoice=invoice)
    refused = rr.tax_request
    assert rr.state == ReturnState.FAILED
    assert "refused" in rr.error
    assert refused.state == TaxRequestState.REFUSED
    assert not LedgerEntry.objects.filter(kind=LedgerKind.INVOICE_RETURNED).exists()

    settings.TAX_SANDBOX_FAIL = ""
    with django_capture_on_commit_callbacks(execute=True):
        return_request_retry(return_request_id=rr.pk, actor=Actor.for_user(finance_user))
    rr = assert_returned_exactly_once(invoice)
    assert rr.tax_request_id != refused.pk  # a refused request is replaced, never reused


def test_the_sweeper_asks_again_about_returns_waiting_on_an_asynchronous_tax_system(
    settings, invoice, finance_user, django_capture_on_commit_callbacks
):
    settings.TAX_SANDBOX_DELAY_SECONDS = 3600
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert rr.state == ReturnState.AWAITING_TAX
    ReturnRequest.objects.filter(pk=rr.pk).update(updated_at=timezone.now() - dt.timedelta(1))
    TaxSandboxOperation.objects.update(ready_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert returns_repoll_tax(older_than=dt.timedelta(minutes=5)) == [rr.pk]
    assert_returned_exactly_once(invoice)


def test_the_sweeper_leaves_manual_requests_to_finance(
    manual, invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    ReturnRequest.objects.filter(pk=rr.pk).update(updated_at=timezone.now() - dt.timedelta(1))
    assert returns_repoll_tax(older_than=dt.timedelta(minutes=5)) == []


@pytest.mark.parametrize("one_statement", [True, False], ids=["one statement", "orm writes"])
def test_r7_recording_is_one_transaction_with_the_credit(
    manual, customer, finance_user, django_capture_on_commit_callbacks, monkeypatch, one_statement
):
    monkeypatch.setattr(sql, "writes_in_with", lambda: one_statement)  # False: SQLite's path
    invoice = issue_invoice(customer, issued_at=last_month())
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    take_return_credit(invoice)  # the database refuses the credit of the outcome

    with pytest.raises(IntegrityError, match="ledger_one_credit_per_returned_invoice"):
        return_request_record_outcome(
            return_request_id=rr.pk, result=red_letter(invoice), actor=Actor.for_user(finance_user)
        )
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.ISSUED
    assert not RedLetterInvoice.objects.exists()
    assert TaxRequest.objects.get(pk=rr.tax_request_id).state == TaxRequestState.PENDING
    assert LedgerEntry.objects.filter(invoice=invoice).count() == 1
    assert not AuditEntry.objects.filter(action="tax.outcome_recorded").exists()


def test_recording_the_outcome_directly_refuses_a_pending_result(invoice):
    tax_request = open_request(invoice)
    with pytest.raises(TaxOutcomeInvalid, match="completed outcome"):
        tax_outcome_record(
            tax_request_id=tax_request.pk,
            result=TaxResult.pending("x"),
            actor=Actor.system("tests"),
        )


# Corrections: audited, never an edit in place ------------------------------------------------


def completed_reversal(customer, finance_user, capture):
    invoice = issue_invoice(customer, issued_at=last_month())
    rr = awaiting(invoice, finance_user, capture)
    return_request_record_outcome(
        return_request_id=rr.pk, result=red_letter(invoice), actor=Actor.for_user(finance_user)
    )
    return invoice, ReturnRequest.objects.get(pk=rr.pk)


def test_r11_a_mistyped_red_letter_number_is_corrected_by_a_new_row_with_an_audit_record(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    invoice, rr = completed_reversal(customer, finance_user, django_capture_on_commit_callbacks)
    reviewer = UserFactory(username="reviewer", is_staff=True)
    return_request_correct_outcome(
        return_request_id=rr.pk,
        actor=Actor.for_user(reviewer),
        reason="Typed 61000001 for 61000010",
        number="61000010",
    )
    rows = list(RedLetterInvoice.objects.filter(original=invoice).order_by("id"))
    assert [(r.number, r.superseded_at is not None) for r in rows] == [
        ("61000001", True),
        ("61000010", False),
    ]
    assert invoice.red_letter_invoice.number == "61000010"
    correction = TaxOutcomeCorrection.objects.get()
    assert (correction.before["number"], correction.after["number"]) == ("61000001", "61000010")
    assert (correction.corrected_by, correction.reason) == (reviewer, "Typed 61000001 for 61000010")
    event = rr.events.order_by("id").last()
    assert (event.actor, event.from_state, event.to_state) == (reviewer, "completed", "completed")
    assert "61000010" in event.text
    credits = LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED)
    assert credits.count() == 1  # the ledger is untouched


def test_r11_a_correction_needs_a_reason_and_a_change(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    _invoice, rr = completed_reversal(customer, finance_user, django_capture_on_commit_callbacks)
    reviewer = UserFactory(username="reviewer", is_staff=True)
    with pytest.raises(TaxOutcomeInvalid, match="Say why"):
        return_request_correct_outcome(
            return_request_id=rr.pk, actor=Actor.for_user(reviewer), reason=" ", number="61000010"
        )
    with pytest.raises(TaxOutcomeInvalid, match="changes nothing"):
        return_request_correct_outcome(
            return_request_id=rr.pk,
            actor=Actor.for_user(reviewer),
            reason="same",
            number="61000001",
        )
    with pytest.raises(TaxOutcomeInvalid, match="8 digits"):
        return_request_correct_outcome(
            return_request_id=rr.pk, actor=Actor.for_user(reviewer), reason="typo", number="6100"
        )
    assert not TaxOutcomeCorrection.objects.exists()
    assert RedLetterInvoice.objects.get().superseded_at is None


def test_r11_a_void_date_is_corrected_with_an_audit_record(
    manual, customer, finance_user, django_capture_on_commit_callbacks, monkeypatch
):
    now = dt.datetime(2026, 11, 20, 12, tzinfo=SHANGHAI)
    monkeypatch.setattr(timezone, "now", lambda: now)
    invoice = issue_invoice(customer, issued_at=dt.datetime(2026, 11, 10, 9, tzinfo=SHANGHAI))
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    return_request_record_outcome(
        return_request_id=rr.pk,
        result=TaxResult.voided("x", dt.date(2026, 11, 20)),
        actor=Actor.for_user(finance_user),
    )
    reviewer = UserFactory(username="reviewer", is_staff=True)
    with pytest.raises(TaxOutcomeInvalid, match="month of issue"):
        return_request_correct_outcome(
            return_request_id=rr.pk,
            actor=Actor.for_user(reviewer),
            reason="typo",
            voided_on=dt.date(2026, 12, 1),
        )
    return_request_correct_outcome(
        return_request_id=rr.pk,
        actor=Actor.for_user(reviewer),
        reason="typo",
        voided_on=dt.date(2026, 11, 18),
    )
    correction = TaxOutcomeCorrection.objects.get()
    assert (correction.before, correction.after) == (
        {"voided_on": "2026-11-20"},
        {"voided_on": "2026-11-18"},
    )
    assert TaxRequest.objects.get(pk=rr.tax_request_id).voided_on == dt.date(2026, 11, 18)


def test_r7_red_letter_rows_cannot_be_edited_or_deleted_only_superseded(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    invoice, _rr = completed_reversal(customer, finance_user, django_capture_on_commit_callbacks)
    rows = RedLetterInvoice.objects.filter(original=invoice)
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.update(number="61000099")
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.delete()
    rows.update(superseded_at=timezone.now())  # the one change a correction makes
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.update(superseded_at=None)  # and it is final


def test_r7_corrections_are_append_only(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    _invoice, rr = completed_reversal(customer, finance_user, django_capture_on_commit_callbacks)
    return_request_correct_outcome(
        return_request_id=rr.pk,
        actor=Actor.for_user(UserFactory(username="reviewer", is_staff=True)),
        reason="typo",
        number="61000010",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        TaxOutcomeCorrection.objects.update(reason="rewritten")
    with pytest.raises(IntegrityError), transaction.atomic():
        TaxOutcomeCorrection.objects.all().delete()


def test_r6_a_request_stays_with_the_backend_it_was_opened_under(
    manual, settings, invoice, finance_user, django_capture_on_commit_callbacks
):
    """A worker or sweeper configured for the sandbox must not act on finance's manual task."""
    rr = awaiting(invoice, finance_user, django_capture_on_commit_callbacks)
    settings.TAX_SYSTEM_BACKEND = "sandbox"
    assert return_tax_submit(return_request_id=rr.pk) is None  # manual: nothing to ask
    ReturnRequest.objects.filter(pk=rr.pk).update(updated_at=timezone.now() - dt.timedelta(1))
    assert returns_repoll_tax(older_than=dt.timedelta(minutes=5)) == []
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_TAX
    assert not TaxSandboxOperation.objects.exists()


def test_r4_paper_of_a_certified_return_never_makes_it_incomplete(
    special_invoice, finance_user, django_capture_on_commit_callbacks
):
    """The buyer keeps a certified invoice: an envelope with the invoice form alone is kept,
    and the return still goes ahead on the approved form (R5 does not apply)."""
    from returns.services import red_letter_form_review

    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number=BUYER_FORM,
    )
    log_paper(special_invoice, finance_user, deduction_form_present=False)
    rr.refresh_from_db()
    assert rr.state == ReturnState.RECEIVED
    with django_capture_on_commit_callbacks(execute=True):
        red_letter_form_review(
            red_letter_form_id=rr.red_letter_forms.get().pk,
            reviewer=Actor.for_user(UserFactory(username="reviewer", is_staff=True)),
            approve=True,
        )
    assert_returned_exactly_once(special_invoice, outcome="reversed")
