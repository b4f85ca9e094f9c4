"""The rule predicates (``invoices.rules``, ``returns.rules``), each on its own.

They are pure functions over model instances: these tests build unsaved rows and touch no
database. The services, views, admin and templates that ask them are tested elsewhere.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from invoices.models import (
    ApplicationState,
    Invoice,
    InvoiceApplication,
    InvoiceMedium,
    InvoiceState,
    InvoiceType,
    Issuer,
    ReturnOutcome,
    TaxRequest,
    TaxRequestState,
)
from invoices.rules import (
    invoice_application_can_be_issued,
    invoice_is_returnable,
    invoice_issued_by_provider,
    invoice_return_refusal,
    tax_request_awaits_buyer,
    tax_request_form_has_lapsed,
    tax_request_outcome_can_be_corrected,
    tax_request_outcome_can_be_recorded,
    void_or_reverse_decision,
)
from returns.models import FormReviewState, MailReceipt, RedLetterForm, ReturnRequest, ReturnState
from returns.rules import (
    invoice_can_be_booked,
    invoice_can_be_certified,
    paper_is_complete,
    paper_missing_parts,
    red_letter_form_can_be_replaced,
    red_letter_form_can_be_reviewed,
    return_awaits_buyer,
    return_can_be_cancelled,
    return_can_be_rejected,
    return_can_be_retried,
    return_is_before_processing,
    return_is_digital,
    return_is_ready_to_process,
    return_needs_red_letter_form,
    return_outcome_can_be_corrected,
    return_outcome_can_be_recorded,
    return_paper_is_awaited,
    return_tracking_can_be_updated,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
ALL_STATES = list(ReturnState)


def invoice(*, special: bool = False, **fields) -> Invoice:
    defaults = {
        "issuer": Issuer.PROVIDER,
        "issuer_name": "The provider",
        "state": InvoiceState.ISSUED,
        "invoice_type": InvoiceType.SPECIAL if special else InvoiceType.ORDINARY,
    }
    return Invoice(**(defaults | fields))


def a_return(
    state: str = ReturnState.SUBMITTED, *, special=False, certified=False, digital=False, **fields
):
    medium = InvoiceMedium.DIGITAL if digital else InvoiceMedium.PAPER
    return ReturnRequest(
        invoice=invoice(special=special, medium=medium),
        medium=medium,
        state=state,
        certified=certified,
        **fields,
    )


def paper(*, special: bool = False, **flags) -> MailReceipt:
    complete = {"invoice_form_present": True, "deduction_form_present": True, "undamaged": True}
    return MailReceipt(invoice=invoice(special=special), **(complete | flags))


def form(review_state: str) -> RedLetterForm:
    return RedLetterForm(review_state=review_state, form_number="4403262600012345")


# --- R1: can this invoice be returned ---------------------------------------------------------


def test_r1_an_issued_provider_invoice_is_returnable():
    assert invoice_is_returnable(invoice())
    assert invoice_return_refusal(invoice()) is None


@pytest.mark.parametrize("state", [InvoiceState.VOIDED, InvoiceState.REVERSED])
def test_r1_a_voided_or_reversed_invoice_is_not_returnable_and_says_its_state(state):
    closed = invoice(state=state)
    assert not invoice_is_returnable(closed)
    assert invoice_return_refusal(closed) == (
        f"This invoice is {closed.get_state_display().lower()} and cannot be returned."
    )


def test_r1_a_marketplace_invoice_is_not_returnable_here_and_names_its_issuer():
    sellers = invoice(issuer=Issuer.MARKETPLACE, issuer_name="Example Seller Ltd.")
    assert not invoice_issued_by_provider(sellers)
    assert not invoice_is_returnable(sellers)
    assert invoice_return_refusal(sellers) == (
        "Issued by Example Seller Ltd.: contact the service provider."
    )


# --- R4: does this return need the buyer's red-letter form instead of paper --------------------


@pytest.mark.parametrize(
    ("special", "certified", "needs_form"),
    [(True, True, True), (True, False, False), (False, False, False), (False, True, False)],
)
def test_r4_only_a_certified_special_invoice_needs_the_red_letter_form(
    special, certified, needs_form
):
    rr = a_return(special=special, certified=certified)
    assert return_needs_red_letter_form(rr) is needs_form
    assert return_paper_is_awaited(rr) is not needs_form


@pytest.mark.parametrize("state", [s for s in ALL_STATES if s != ReturnState.SUBMITTED])
def test_r4_paper_is_awaited_only_while_submitted(state):
    assert not return_paper_is_awaited(a_return(state))


def test_r4_paper_return_is_ready_only_with_complete_paper():
    rr = a_return(ReturnState.RECEIVED)
    assert not return_is_ready_to_process(rr, None)
    rr.mail_receipt = paper(undamaged=False)
    assert not return_is_ready_to_process(rr, None)
    rr.mail_receipt = paper()
    assert return_is_ready_to_process(rr, None)


def test_r4_certified_special_return_is_ready_only_with_an_approved_form_and_no_paper():
    rr = a_return(special=True, certified=True)
    assert not return_is_ready_to_process(rr, None)
    assert not return_is_ready_to_process(rr, form(FormReviewState.PENDING))
    assert not return_is_ready_to_process(rr, form(FormReviewState.REJECTED))
    assert return_is_ready_to_process(rr, form(FormReviewState.APPROVED))


# --- R5: is this paper complete -----------------------------------------------------------------


def test_r5_complete_paper_misses_nothing():
    assert paper_missing_parts(paper()) == []
    assert paper_is_complete(paper(special=True))


def test_r5_ordinary_paper_needs_no_deduction_form():
    assert paper_is_complete(paper(deduction_form_present=False))


def test_r5_special_paper_needs_its_deduction_form():
    assert paper_missing_parts(paper(special=True, deduction_form_present=False)) == [
        "the deduction form"
    ]


def test_r5_each_missing_part_is_named():
    incomplete = paper(
        special=True, invoice_form_present=False, deduction_form_present=False, undamaged=False
    )
    assert paper_missing_parts(incomplete) == [
        "the invoice form",
        "the deduction form",
        "undamaged paper",
    ]
    assert not paper_is_complete(incomplete)


# --- R6: void or reverse --------------------------------------------------------------------------


def test_r6_the_decision_is_the_one_outcome_enum_stored_on_the_return():
    now = dt.datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)
    voided = void_or_reverse_decision(issued_at=now, certified=False, now=now)
    reversed_ = void_or_reverse_decision(issued_at=now, certified=True, now=now)
    assert (voided, reversed_) == (ReturnOutcome.VOIDED, ReturnOutcome.REVERSED)
    field = ReturnRequest._meta.get_field("outcome")
    assert [value for value, _ in field.choices] == ReturnOutcome.values == ["voided", "reversed"]


# --- R9: can this return be cancelled -----------------------------------------------------------


@pytest.mark.parametrize("state", ALL_STATES)
def test_r9_only_a_submitted_return_can_be_cancelled(state):
    assert return_can_be_cancelled(a_return(state)) is (state == ReturnState.SUBMITTED)


@pytest.mark.parametrize("state", ALL_STATES)
def test_tracking_can_be_updated_only_while_submitted(state):
    assert return_tracking_can_be_updated(a_return(state)) is (state == ReturnState.SUBMITTED)


# --- rejecting, the form, retrying, the outcome ------------------------------------------------

BEFORE = {ReturnState.SUBMITTED, ReturnState.RECEIVED}


@pytest.mark.parametrize("state", ALL_STATES)
def test_r5_only_a_return_before_processing_can_be_rejected(state):
    rr = a_return(state)
    assert return_is_before_processing(rr) is (state in BEFORE)
    assert return_can_be_rejected(rr) is (state in BEFORE)


@pytest.mark.parametrize("state", ALL_STATES)
def test_r3_the_form_can_be_replaced_before_processing_until_approved(state):
    rr = a_return(state, special=True, certified=True)
    assert red_letter_form_can_be_replaced(rr, None) is (state in BEFORE)
    assert red_letter_form_can_be_replaced(rr, form(FormReviewState.REJECTED)) is (state in BEFORE)
    assert not red_letter_form_can_be_replaced(rr, form(FormReviewState.APPROVED))


def test_r3_a_return_that_needs_no_form_takes_none():
    assert not red_letter_form_can_be_replaced(a_return(special=True, certified=False), None)


@pytest.mark.parametrize("review_state", list(FormReviewState))
def test_only_a_pending_form_can_be_reviewed(review_state):
    rr = a_return(ReturnState.RECEIVED, special=True, certified=True)
    assert red_letter_form_can_be_reviewed(rr, form(review_state)) is (
        review_state == FormReviewState.PENDING
    )


@pytest.mark.parametrize("state", ALL_STATES)
def test_a_pending_form_can_be_reviewed_only_before_processing(state):
    rr = a_return(state, special=True, certified=True)
    assert red_letter_form_can_be_reviewed(rr, form(FormReviewState.PENDING)) is (state in BEFORE)


@pytest.mark.parametrize("state", ALL_STATES)
def test_only_a_failed_return_can_be_retried(state):
    assert return_can_be_retried(a_return(state)) is (state == ReturnState.FAILED)


@pytest.mark.parametrize("state", ALL_STATES)
def test_r6_r7_an_outcome_is_recorded_for_a_return_sent_to_the_tax_system(state):
    sent = {
        ReturnState.AWAITING_TAX,
        ReturnState.AWAITING_BUYER,
        ReturnState.FAILED,
        ReturnState.COMPLETED,
    }
    assert return_outcome_can_be_recorded(a_return(state, tax_request_id=7)) is (state in sent)
    assert not return_outcome_can_be_recorded(a_return(state))


@pytest.mark.parametrize("state", ALL_STATES)
def test_only_a_completed_returns_outcome_can_be_corrected(state):
    completed = state == ReturnState.COMPLETED
    assert return_outcome_can_be_corrected(a_return(state, tax_request_id=7)) is completed
    assert not return_outcome_can_be_corrected(a_return(state))


# --- invoices: applications and tax requests -------------------------------------------------


@pytest.mark.parametrize("state", list(ApplicationState))
def test_only_a_pending_application_can_be_issued(state):
    application = InvoiceApplication(state=state)
    assert invoice_application_can_be_issued(application) is (state == ApplicationState.PENDING)


@pytest.mark.parametrize("state", list(TaxRequestState))
def test_an_outcome_is_recorded_on_a_pending_request_and_corrected_on_a_done_one(state):
    tax_request = TaxRequest(state=state)
    open_states = {TaxRequestState.PENDING, TaxRequestState.AWAITING_BUYER}
    assert tax_request_outcome_can_be_recorded(tax_request) is (state in open_states)
    assert tax_request_outcome_can_be_corrected(tax_request) is (state == TaxRequestState.DONE)


@pytest.mark.parametrize(("special", "asked"), [(True, True), (False, False)])
def test_r3_only_a_special_invoices_return_asks_whether_it_was_certified(special, asked):
    assert invoice_can_be_certified(invoice(special=special)) is asked


# --- digital invoices (数电票) ------------------------------------------------------------------


@pytest.mark.parametrize("special", [True, False])
def test_r3_a_digital_invoices_return_asks_whether_it_was_booked_not_certified(special):
    digital = invoice(special=special, medium=InvoiceMedium.DIGITAL)
    assert invoice_can_be_booked(digital)
    assert not invoice_can_be_certified(digital)
    assert not invoice_can_be_booked(invoice(special=special))


@pytest.mark.parametrize("state", ALL_STATES)
def test_r4_a_digital_return_awaits_no_paper_and_is_always_ready(state):
    rr = a_return(state, digital=True, special=True)
    assert return_is_digital(rr)
    assert not return_paper_is_awaited(rr)
    assert not return_tracking_can_be_updated(rr)
    assert not return_needs_red_letter_form(rr)
    assert return_is_ready_to_process(rr, None)


@pytest.mark.parametrize("certified", [True, False])
def test_r6_a_digital_invoice_is_reversed_even_in_its_month_of_issue(certified):
    now = dt.datetime(2026, 3, 15, 10, tzinfo=SHANGHAI)
    decision = void_or_reverse_decision(
        issued_at=now - dt.timedelta(hours=1), certified=certified, now=now, digital=True
    )
    assert decision == ReturnOutcome.REVERSED
    paper_decision = void_or_reverse_decision(
        issued_at=now - dt.timedelta(hours=1), certified=False, now=now
    )
    assert paper_decision == ReturnOutcome.VOIDED


@pytest.mark.parametrize("state", ALL_STATES)
def test_only_an_awaiting_buyer_return_awaits_the_buyer(state):
    assert return_awaits_buyer(a_return(state, digital=True)) is (
        state == ReturnState.AWAITING_BUYER
    )


def test_a_form_lapses_at_its_deadline_only_while_awaiting_the_buyer():
    deadline = dt.datetime(2026, 3, 18, 10, tzinfo=SHANGHAI)
    waiting = TaxRequest(state=TaxRequestState.AWAITING_BUYER, confirm_by=deadline)
    assert tax_request_awaits_buyer(waiting)
    assert not tax_request_form_has_lapsed(waiting, now=deadline - dt.timedelta(seconds=1))
    assert tax_request_form_has_lapsed(waiting, now=deadline)
    done = TaxRequest(state=TaxRequestState.DONE, confirm_by=deadline)
    assert not tax_request_awaits_buyer(done)
    assert not tax_request_form_has_lapsed(done, now=deadline + dt.timedelta(days=1))
