"""The post room's reads and writes: return references, finding the invoice a scan stands for,
one envelope holding several invoices, and the unmatched paper queue (match to a return, or
send back to the customer)."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from stdnum import luhn

from core.audit.actor import Actor
from core.exceptions import DomainError
from invoices.models import InvoiceType
from returns.exceptions import (
    InvalidMailReceipt,
    InvalidScan,
    InvoiceNotEligibleForReturn,
    MailReceiptAlreadyHandled,
    ReturnNotAwaitingPaper,
    UnknownInvoice,
)
from returns.models import MailReceipt, ReturnRequest, ReturnState
from returns.references import reference_parse
from returns.scans import scan_parse
from returns.selectors import (
    invoice_for_scan,
    mail_receipt_matchable,
    mail_receipts_logged_recently,
    mail_receipts_unmatched,
)
from returns.services import (
    EnvelopeItem,
    MailReceiptOutcome,
    mail_envelope_log,
    mail_receipt_match,
    mail_receipt_send_back,
    red_letter_form_review,
    return_request_cancel,
    return_request_reject,
)
from tests.factories import CustomerFactory, issue_invoice, marketplace_invoice
from tests.returns_helpers import log_paper, png_bytes, submit

pytestmark = pytest.mark.django_db


def complete(invoice) -> EnvelopeItem:
    return EnvelopeItem(invoice.pk, True, invoice.is_special, True)


def qr_of(invoice, **changes) -> str:
    fields = {
        "type": "01" if invoice.is_special else "04",
        "code": invoice.code,
        "number": invoice.number,
        "amount": str(invoice.amount),
        "date": f"{timezone.localtime(invoice.issued_at):%Y%m%d}",
    } | changes
    return "01,{type},{code},{number},{amount},{date},,C0DE".format(**fields)


# --- references ---------------------------------------------------------------------------------


def test_every_return_gets_a_reference_of_the_stored_format(invoice):
    rr = submit(invoice)
    rr.refresh_from_db()
    assert rr.reference.startswith("R")
    assert len(rr.reference) == 15


def test_a_reference_is_unique_in_the_database(customer):
    first = submit(issue_invoice(customer))
    second = submit(issue_invoice(customer))
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.filter(pk=second.pk).update(reference=first.reference)


def test_a_reference_of_another_format_is_refused_by_the_database(invoice):
    rr = submit(invoice)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.filter(pk=rr.pk).update(reference="R-1")


def test_a_reference_collision_on_submit_asks_to_submit_again(customer, monkeypatch):
    first = submit(issue_invoice(customer))
    second_invoice = issue_invoice(customer)
    # The field's default, as Django caches it, draws the first return's reference again.
    monkeypatch.setattr(
        ReturnRequest._meta.get_field("reference"), "_get_default", lambda: first.reference
    )
    with pytest.raises(DomainError, match="please submit it again"):
        submit(second_invoice)
    assert not ReturnRequest.objects.filter(invoice=second_invoice).exists()


# --- what a scan stands for ---------------------------------------------------------------------


def test_a_slip_finds_its_return_s_invoice(invoice):
    rr = submit(invoice)
    assert invoice_for_scan(scan=scan_parse(rr.reference)) == invoice


def test_an_unknown_slip_is_refused(invoice):
    rr = submit(invoice)
    other = rr.reference[:8] + "000000"
    # A well-formed reference no return has (its check character computed for it).
    body = other[1:7] + other[8:14]
    forged = other + luhn.calc_check_digit(body, alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert reference_parse(forged) == forged
    with pytest.raises(UnknownInvoice, match="No return has reference"):
        invoice_for_scan(scan=scan_parse(forged))


def test_a_code_and_number_finds_the_invoice(invoice):
    assert invoice_for_scan(scan=scan_parse(f"{invoice.code} {invoice.number}")) == invoice


def test_an_unknown_code_and_number_is_refused(invoice):
    with pytest.raises(UnknownInvoice, match="No invoice has code 3300201130 and number 99999999"):
        invoice_for_scan(scan=scan_parse("3300201130 99999999"))


def test_an_invoice_qr_code_that_agrees_finds_the_invoice(special_invoice):
    assert invoice_for_scan(scan=scan_parse(qr_of(special_invoice))) == special_invoice


def test_an_invoice_qr_code_with_another_amount_is_reported_not_accepted(invoice):
    with pytest.raises(InvalidScan, match="does not agree with invoice") as refused:
        invoice_for_scan(scan=scan_parse(qr_of(invoice, amount="1.00")))
    assert "1.00" in str(refused.value)


def test_an_invoice_qr_code_with_another_date_is_reported_not_accepted(invoice):
    with pytest.raises(InvalidScan, match="issue date is 2020-01-01"):
        invoice_for_scan(scan=scan_parse(qr_of(invoice, date="20200101")))


def test_an_invoice_qr_code_of_another_type_is_reported_not_accepted(invoice):
    with pytest.raises(InvalidScan, match="增值税专用发票"):
        invoice_for_scan(scan=scan_parse(qr_of(invoice, type="01")))


def test_a_digital_invoice_qr_code_says_digital_invoices_are_not_mailed(digital):
    payload = f"01,32,,{digital.number},{digital.amount},20261101,,ABCD"
    with pytest.raises(InvoiceNotEligibleForReturn, match="digital invoices are not mailed"):
        invoice_for_scan(scan=scan_parse(payload))


def test_a_digital_invoice_s_number_typed_says_digital_invoices_are_not_mailed(digital):
    with pytest.raises(InvoiceNotEligibleForReturn, match="digital invoices are not mailed"):
        invoice_for_scan(scan=scan_parse(digital.number))


def test_an_old_style_e_invoice_qr_code_says_it_is_not_mailed(invoice):
    with pytest.raises(InvoiceNotEligibleForReturn, match="digital invoices are not mailed"):
        invoice_for_scan(scan=scan_parse(qr_of(invoice, type="10")))


def test_another_issuer_s_invoice_is_refused(customer):
    market = marketplace_invoice(customer)
    with pytest.raises(InvoiceNotEligibleForReturn, match="not returned here"):
        invoice_for_scan(scan=scan_parse(f"{market.code} {market.number}"))


# --- one envelope, several invoices -------------------------------------------------------------


def test_r4_an_envelope_with_two_invoices_logs_each_and_advances_each_return(
    customer, finance_user, django_capture_on_commit_callbacks
):
    first, second = issue_invoice(customer), issue_invoice(customer, invoice_type="special")
    one, two = submit(first), submit(second, certified=False)
    with django_capture_on_commit_callbacks(execute=True):
        results = mail_envelope_log(
            items=[complete(first), complete(second)],
            actor=Actor.for_user(finance_user),
            courier="SF Express",
            tracking_number="SF100",
        )
    assert [r.outcome for r in results] == [MailReceiptOutcome.MATCHED] * 2
    assert {r.receipt.tracking_number for r in results} == {"SF100"}
    assert {r.receipt.received_at for r in results} == {results[0].receipt.received_at}
    one.refresh_from_db()
    two.refresh_from_db()
    assert one.state == two.state == ReturnState.COMPLETED


def test_r5_each_invoice_of_an_envelope_keeps_its_own_parts(customer, finance_user):
    first, second = issue_invoice(customer), issue_invoice(customer)
    one, two = submit(first), submit(second)
    mail_envelope_log(
        items=[complete(first), EnvelopeItem(second.pk, False, False, True)],
        actor=Actor.for_user(finance_user),
    )
    one.refresh_from_db()
    two.refresh_from_db()
    assert one.state != ReturnState.REJECTED
    assert two.state == ReturnState.REJECTED
    assert "the invoice form" in two.rejection_reason


def test_an_envelope_is_all_or_nothing(customer, finance_user):
    first = issue_invoice(customer)
    market = marketplace_invoice(customer)
    with pytest.raises(InvoiceNotEligibleForReturn):
        mail_envelope_log(
            items=[complete(first), complete(market)], actor=Actor.for_user(finance_user)
        )
    assert not MailReceipt.objects.exists()


def test_an_empty_envelope_or_an_invoice_twice_is_refused(invoice, finance_user):
    with pytest.raises(InvalidMailReceipt, match="at least one"):
        mail_envelope_log(items=[], actor=Actor.for_user(finance_user))
    with pytest.raises(InvalidMailReceipt, match="twice"):
        mail_envelope_log(
            items=[complete(invoice), complete(invoice)], actor=Actor.for_user(finance_user)
        )


def test_an_envelope_logged_twice_saves_nothing_the_second_time(invoice, finance_user):
    submit(invoice)
    mail_envelope_log(items=[complete(invoice)], actor=Actor.for_user(finance_user))
    again = mail_envelope_log(items=[complete(invoice)], actor=Actor.for_user(finance_user))
    assert again[0].outcome == MailReceiptOutcome.DUPLICATE
    assert MailReceipt.objects.count() == 1


@pytest.mark.parametrize("history", ["never applied", "cancelled", "rejected"])
def test_r4_paper_matching_no_open_return_waits_in_the_unmatched_queue(
    invoice, finance_user, history
):
    if history == "cancelled":
        rr = submit(invoice)
        return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(invoice.customer.user))
    elif history == "rejected":
        rr = submit(invoice)
        return_request_reject(
            return_request_id=rr.pk, actor=Actor.for_user(finance_user), reason="Wrong paper"
        )
    [result] = mail_envelope_log(items=[complete(invoice)], actor=Actor.for_user(finance_user))
    assert result.outcome == MailReceiptOutcome.UNMATCHED
    assert list(mail_receipts_unmatched()) == [result.receipt]


def test_the_unmatched_queue_is_oldest_first_and_leaves_out_matched_paper(customer, finance_user):
    matched, newer, older = (issue_invoice(customer) for _ in range(3))
    submit(matched)
    log_paper(matched, finance_user)
    now = timezone.now()
    mail_envelope_log(
        items=[complete(newer)],
        actor=Actor.for_user(finance_user),
        received_at=now - dt.timedelta(days=1),
    )
    mail_envelope_log(
        items=[complete(older)],
        actor=Actor.for_user(finance_user),
        received_at=now - dt.timedelta(days=5),
    )
    assert [r.invoice for r in mail_receipts_unmatched()] == [older, newer]


def test_just_logged_lists_each_receipt_with_the_return_that_took_it(customer, finance_user):
    taken, unmatched = issue_invoice(customer), issue_invoice(customer)
    rr = submit(taken)
    results = mail_envelope_log(
        items=[complete(taken), complete(unmatched)], actor=Actor.for_user(finance_user)
    )
    logged = mail_receipts_logged_recently(receipt_ids=[r.receipt.pk for r in results])
    assert [(item.receipt.invoice, item.return_request) for item in logged] == [
        (unmatched, None),
        (taken, rr),
    ]


# --- the unmatched queue: match to a return -----------------------------------------------------


@pytest.fixture
def unmatched_with_a_waiting_return(invoice, finance_user):
    """Paper logged unmatched, and a return of its invoice still waiting for paper (a return
    made before the paper existed could only be a ``SUBMITTED`` row created here directly: the
    services match such paper on submit)."""
    [result] = mail_envelope_log(items=[complete(invoice)], actor=Actor.for_user(finance_user))
    rr = ReturnRequest.objects.create(
        invoice=invoice,
        medium=invoice.medium,
        reason="Wrong title",
        submitted_by=invoice.customer.user,
    )
    return result.receipt, rr


def test_r4_matching_unmatched_paper_advances_the_return_and_empties_the_queue(
    unmatched_with_a_waiting_return, finance_user, django_capture_on_commit_callbacks
):
    receipt, rr = unmatched_with_a_waiting_return
    [row] = mail_receipts_unmatched()
    assert row.awaiting_return_id == rr.pk
    assert row.awaiting_return_reference == rr.reference
    with django_capture_on_commit_callbacks(execute=True):
        mail_receipt_match(
            mail_receipt_id=receipt.pk, return_request_id=rr.pk, actor=Actor.for_user(finance_user)
        )
    rr.refresh_from_db()
    assert rr.mail_receipt == receipt
    assert rr.state == ReturnState.COMPLETED
    assert rr.events.filter(to_state=ReturnState.RECEIVED, actor=finance_user).exists()
    assert not mail_receipts_unmatched().exists()


def test_r5_matching_incomplete_paper_rejects_the_return(invoice, finance_user):
    [result] = mail_envelope_log(
        items=[EnvelopeItem(invoice.pk, True, False, False)], actor=Actor.for_user(finance_user)
    )
    rr = ReturnRequest.objects.create(
        invoice=invoice, medium=invoice.medium, reason="x", submitted_by=invoice.customer.user
    )
    mail_receipt_match(
        mail_receipt_id=result.receipt.pk,
        return_request_id=rr.pk,
        actor=Actor.for_user(finance_user),
    )
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    assert "undamaged paper" in rr.rejection_reason


def test_matching_twice_is_a_no_op(unmatched_with_a_waiting_return, finance_user):
    receipt, rr = unmatched_with_a_waiting_return
    mail_receipt_match(
        mail_receipt_id=receipt.pk, return_request_id=rr.pk, actor=Actor.for_user(finance_user)
    )
    events = rr.events.count()
    again = mail_receipt_match(
        mail_receipt_id=receipt.pk, return_request_id=rr.pk, actor=Actor.for_user(finance_user)
    )
    assert again.pk == rr.pk
    assert rr.events.count() == events


def test_paper_is_matched_only_to_a_return_of_its_own_invoice(
    unmatched_with_a_waiting_return, finance_user, customer
):
    receipt, _rr = unmatched_with_a_waiting_return
    other = submit(issue_invoice(customer))
    with pytest.raises(ReturnNotAwaitingPaper, match="its own invoice"):
        mail_receipt_match(
            mail_receipt_id=receipt.pk,
            return_request_id=other.pk,
            actor=Actor.for_user(finance_user),
        )
    assert mail_receipts_unmatched().get() == receipt


def test_paper_is_not_matched_to_a_return_that_does_not_wait_for_paper(
    unmatched_with_a_waiting_return, finance_user
):
    receipt, rr = unmatched_with_a_waiting_return
    return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(rr.submitted_by))
    with pytest.raises(ReturnNotAwaitingPaper, match="does not wait for paper: it is cancelled"):
        mail_receipt_match(
            mail_receipt_id=receipt.pk, return_request_id=rr.pk, actor=Actor.for_user(finance_user)
        )


def test_paper_sent_back_is_not_matched(unmatched_with_a_waiting_return, finance_user):
    receipt, rr = unmatched_with_a_waiting_return
    mail_receipt_send_back(
        mail_receipt_id=receipt.pk, actor=Actor.for_user(finance_user), tracking_number="SF1"
    )
    with pytest.raises(MailReceiptAlreadyHandled, match="sent back to the customer"):
        mail_receipt_match(
            mail_receipt_id=receipt.pk, return_request_id=rr.pk, actor=Actor.for_user(finance_user)
        )


def test_paper_another_return_took_is_not_matched_again(invoice, finance_user):
    rr = submit(invoice)
    receipt = log_paper(invoice, finance_user).receipt
    rr.refresh_from_db()
    second = ReturnRequest.objects.filter(pk=rr.pk)
    assert second.get().mail_receipt == receipt
    other = issue_invoice(invoice.customer)
    other_rr = submit(other)
    with pytest.raises(ReturnNotAwaitingPaper):
        mail_receipt_match(
            mail_receipt_id=receipt.pk,
            return_request_id=other_rr.pk,
            actor=Actor.for_user(finance_user),
        )


# --- the unmatched queue: send back -------------------------------------------------------------


def test_sending_paper_back_records_the_tracking_number_and_leaves_the_queue(invoice, finance_user):
    [result] = mail_envelope_log(items=[complete(invoice)], actor=Actor.for_user(finance_user))
    receipt = mail_receipt_send_back(
        mail_receipt_id=result.receipt.pk,
        actor=Actor.for_user(finance_user),
        courier="EMS",
        tracking_number=" EMS123 ",
    )
    assert receipt.sent_back_tracking_number == "EMS123"
    assert receipt.sent_back_by == finance_user
    assert receipt.sent_back_at is not None
    assert not mail_receipts_unmatched().exists()


def test_paper_sent_back_is_never_matched_on_a_later_submit(invoice, finance_user):
    [result] = mail_envelope_log(items=[complete(invoice)], actor=Actor.for_user(finance_user))
    mail_receipt_send_back(
        mail_receipt_id=result.receipt.pk, actor=Actor.for_user(finance_user), tracking_number="T1"
    )
    assert mail_receipt_matchable(invoice_id=invoice.pk) is None
    rr = submit(invoice)
    assert rr.state == ReturnState.SUBMITTED
    assert rr.mail_receipt is None


def test_the_tracking_number_is_required_to_send_paper_back(invoice, finance_user):
    [result] = mail_envelope_log(items=[complete(invoice)], actor=Actor.for_user(finance_user))
    with pytest.raises(InvalidMailReceipt, match="tracking number"):
        mail_receipt_send_back(
            mail_receipt_id=result.receipt.pk,
            actor=Actor.for_user(finance_user),
            tracking_number=" ",
        )
    assert mail_receipts_unmatched().get() == result.receipt


def test_sending_back_twice_with_the_same_tracking_number_is_a_no_op(invoice, finance_user):
    [result] = mail_envelope_log(items=[complete(invoice)], actor=Actor.for_user(finance_user))
    first = mail_receipt_send_back(
        mail_receipt_id=result.receipt.pk, actor=Actor.for_user(finance_user), tracking_number="T1"
    )
    again = mail_receipt_send_back(
        mail_receipt_id=result.receipt.pk, actor=Actor.for_user(finance_user), tracking_number="T1"
    )
    assert again.sent_back_at == first.sent_back_at
    with pytest.raises(MailReceiptAlreadyHandled, match="tracking T1"):
        mail_receipt_send_back(
            mail_receipt_id=result.receipt.pk,
            actor=Actor.for_user(finance_user),
            tracking_number="T2",
        )


def test_paper_a_return_took_is_not_sent_back(invoice, finance_user):
    rr = submit(invoice)
    receipt = log_paper(invoice, finance_user).receipt
    with pytest.raises(MailReceiptAlreadyHandled, match=rr.reference):
        mail_receipt_send_back(
            mail_receipt_id=receipt.pk, actor=Actor.for_user(finance_user), tracking_number="T"
        )


def test_unknown_paper_is_refused(finance_user):
    with pytest.raises(MailReceiptAlreadyHandled, match="No such paper"):
        mail_receipt_send_back(
            mail_receipt_id=999999, actor=Actor.for_user(finance_user), tracking_number="T"
        )


def test_a_sent_back_receipt_must_say_when_by_whom_and_its_tracking_number(invoice, finance_user):
    [result] = mail_envelope_log(items=[complete(invoice)], actor=Actor.for_user(finance_user))
    rows = MailReceipt.objects.filter(pk=result.receipt.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.update(sent_back_at=timezone.now(), sent_back_by=finance_user)  # no tracking
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.update(sent_back_tracking_number="T1")  # no date, no clerk
    rows.update(
        sent_back_at=timezone.now(), sent_back_by=finance_user, sent_back_tracking_number="T1"
    )
    assert rows.get().sent_back_tracking_number == "T1"


def test_r4_paper_of_a_certified_return_gone_ahead_on_its_form_waits_unmatched(
    customer, finance_user
):
    special = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    rr = submit(
        special,
        certified=True,
        red_letter_form=SimpleUploadedFile("s.png", png_bytes(), content_type="image/png"),
        red_letter_form_number="4403000100000001",
    )
    # The buyer's approved form stands in for the paper (R4): the return goes ahead without it.
    red_letter_form_review(
        red_letter_form_id=rr.red_letter_forms.get().pk,
        reviewer=Actor.for_user(finance_user),
        approve=True,
        reason="",
    )
    [result] = mail_envelope_log(items=[complete(special)], actor=Actor.for_user(finance_user))
    assert result.outcome == MailReceiptOutcome.UNMATCHED
    assert mail_receipts_unmatched().get().awaiting_return_id is None


def test_another_customer_s_invoice_is_logged_like_any_paper(finance_user):
    # The post room acts for finance on every customer's paper: no customer filter applies.
    invoice = issue_invoice(CustomerFactory())
    [result] = mail_envelope_log(items=[complete(invoice)], actor=Actor.for_user(finance_user))
    assert result.receipt.invoice == invoice


# --- the audit log (issue 11: every action recorded) -----------------------------------------


def test_matching_paper_by_hand_is_audited_with_the_clerk_as_actor(
    unmatched_with_a_waiting_return, finance_user
):
    from core.audit.models import AuditEntry

    receipt, rr = unmatched_with_a_waiting_return
    mail_receipt_match(
        mail_receipt_id=receipt.pk, return_request_id=rr.pk, actor=Actor.for_user(finance_user)
    )
    entry = AuditEntry.objects.get(action="paper.matched")
    assert (entry.actor_kind, entry.actor_user, entry.object_id, entry.customer_id) == (
        "staff",
        finance_user,
        str(receipt.pk),
        rr.invoice.customer_id,
    )
    assert entry.text == f"Paper invoice {rr.invoice.number} matched to return {rr.reference}"


def test_sending_paper_back_is_audited_with_the_clerk_as_actor(
    unmatched_with_a_waiting_return, finance_user
):
    from core.audit.models import AuditEntry

    receipt, _rr = unmatched_with_a_waiting_return
    mail_receipt_send_back(
        mail_receipt_id=receipt.pk, actor=Actor.for_user(finance_user), tracking_number="SF77"
    )
    entry = AuditEntry.objects.get(action="paper.sent_back")
    assert (entry.actor_kind, entry.actor_user, entry.object_id) == (
        "staff",
        finance_user,
        str(receipt.pk),
    )
    assert entry.text == (
        f"Paper invoice {receipt.invoice.number} sent back to the customer (SF77)"
    )
