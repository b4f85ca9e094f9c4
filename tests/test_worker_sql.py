"""The worker path's written-out statements (issue 16, P3) read and write what the ORM did: the
reads make the instances the ORM's joins make, the one-statement transition writes the rows the
ORM's three writes wrote."""

import datetime as dt

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from core import sql
from core.audit.actor import Actor
from core.audit.models import AuditEntry
from invoices.models import (
    Invoice,
    InvoiceApplication,
    InvoiceState,
    LedgerEntry,
    LedgerKind,
    TaxRequest,
)
from invoices.taxsystem import services as tax_services
from returns.models import ReturnRequest, ReturnState
from returns.services import _common, processing, return_request_cancel, return_request_process
from returns.tasks import return_process_task
from tests.factories import VALID_USCC, issue_invoice
from tests.returns_helpers import ready_to_process, submit

pytestmark = pytest.mark.django_db


def customer_of(rr: ReturnRequest) -> Actor:
    return Actor.customer(rr.invoice.customer.user, rr.invoice.customer_id)


def _row(obj, *, without=()):
    return {
        f.attname: getattr(obj, f.attname)
        for f in type(obj)._meta.concrete_fields
        if f.attname not in without
    }


def test_p3_the_locked_return_comes_with_the_rows_the_orm_joined(invoice, finance_user):
    rr = ready_to_process(invoice, finance_user)
    expected = ReturnRequest.objects.select_related(
        "invoice", "invoice__customer__user", "mail_receipt__invoice"
    ).get(pk=rr.pk)

    with transaction.atomic():
        locked = _common._lock_return(rr.pk)

    assert _row(locked) == _row(expected)
    assert _row(locked.invoice) == _row(expected.invoice)
    assert _row(locked.invoice.customer) == _row(expected.invoice.customer)
    assert _row(locked.invoice.customer.user) == _row(expected.invoice.customer.user)
    assert locked.mail_receipt is not None
    assert expected.mail_receipt is not None
    assert _row(locked.mail_receipt) == _row(expected.mail_receipt)
    # The paper's invoice is the return's own invoice, not read again.
    assert locked.mail_receipt.invoice is locked.invoice


def test_p3_a_return_without_paper_is_locked_with_none_in_its_place(invoice):
    rr = submit(invoice)

    with transaction.atomic():
        locked = _common._lock_return(rr.pk)

    assert locked.mail_receipt_id is None
    assert locked.mail_receipt is None
    assert _row(locked) == _row(ReturnRequest.objects.get(pk=rr.pk))


def test_p3_no_return_no_lock():
    with transaction.atomic(), pytest.raises(ReturnRequest.DoesNotExist):
        _common._lock_return(987654321)


def test_p3_the_request_reads_make_the_instances_the_orm_makes(invoice, finance_user):
    rr = ready_to_process(invoice, finance_user)
    assert processing._return_with_request(rr.pk).tax_request is None  # not processed yet
    return_request_process(return_request_id=rr.pk, submitted_by_caller=True)
    rr.refresh_from_db()
    assert rr.state == ReturnState.AWAITING_TAX

    read = processing._return_with_request(rr.pk)
    expected = ReturnRequest.objects.select_related("tax_request").get(pk=rr.pk)
    assert _row(read) == _row(expected)
    assert _row(read.tax_request) == _row(expected.tax_request)
    assert processing._return_with_request(987654321) is None

    to_submit = tax_services._request_to_submit(rr.tax_request_id)
    expected_request = TaxRequest.objects.select_related(
        "invoice__customer", "invoice__application"
    ).get(pk=rr.tax_request_id)
    assert _row(to_submit) == _row(expected_request)
    assert _row(to_submit.invoice) == _row(expected_request.invoice)
    assert _row(to_submit.invoice.customer) == _row(expected_request.invoice.customer)
    assert _row(to_submit.invoice.application) == _row(expected_request.invoice.application)
    assert tax_services.tax_submission(to_submit) == tax_services.tax_submission(expected_request)

    with transaction.atomic():
        locked_request, locked_invoice = tax_services._lock(rr.tax_request_id)
        with_pending, pending_id = tax_services._invoice_to_request(invoice.pk)
    assert _row(locked_request) == _row(expected_request)
    assert _row(locked_invoice) == _row(Invoice.objects.get(pk=invoice.pk))
    assert locked_request.invoice is locked_invoice
    assert _row(with_pending) == _row(locked_invoice)
    assert pending_id == rr.tax_request_id


def test_p3_an_invoice_of_an_application_is_submitted_with_the_applications_taxpayer_id(customer):
    invoice = issue_invoice(customer)  # applied for, then issued, through the services
    tax_request = tax_services.tax_request_open(
        invoice_id=invoice.pk, certified=False, reason_code="issuing_error"
    )

    read = tax_services._request_to_submit(tax_request.pk)

    assert read.invoice.application_id is not None
    expected = InvoiceApplication.objects.get(pk=read.invoice.application_id)
    assert _row(read.invoice.application) == _row(expected)
    assert tax_services.tax_submission(read).original.buyer_taxpayer_id == VALID_USCC


def test_p3_the_one_statement_transition_writes_the_rows_the_orm_writes(customer, monkeypatch):
    # The same cancel, once through the statement and once through the ORM's writes (SQLite's
    # path): the same values but the ids, the times and the return's own identifiers.
    fast = submit(issue_invoice(customer))
    slow = submit(issue_invoice(customer))
    return_request_cancel(return_request_id=fast.pk, actor=customer_of(fast))
    with monkeypatch.context() as patched:
        patched.setattr(_common, "_inserts_in_with", lambda: False)
        return_request_cancel(return_request_id=slow.pk, actor=customer_of(slow))

    def written(rr):
        rr = ReturnRequest.objects.get(pk=rr.pk)
        event = rr.events.get(to_state=ReturnState.CANCELLED)
        entry = AuditEntry.objects.get(
            object_type="returns.returnrequest", object_id=str(rr.pk), action="return.cancelled"
        )
        return rr, event, entry

    varying = {"id", "reference", "invoice_id", "invoice_code", "invoice_number"}
    varying |= {"created_at", "updated_at", "at", "return_request_id", "object_id"}
    for fast_row, slow_row in zip(written(fast), written(slow), strict=True):
        assert _row(fast_row, without=varying) == _row(slow_row, without=varying)
    rr, event, entry = written(fast)
    assert rr.state == ReturnState.CANCELLED
    assert (event.from_state, event.note_key) == (
        ReturnState.SUBMITTED,
        "return.cancelled_by_customer",
    )
    assert entry.object_id == str(rr.pk)
    assert rr.updated_at <= event.created_at <= entry.at <= timezone.now() + dt.timedelta(seconds=1)


def test_p3_the_one_statement_outcome_writes_the_rows_the_orm_writes(
    customer, finance_user, monkeypatch
):
    # Two voids recorded, once through the statement and once through the ORM's writes
    # (SQLite's path): the invoice, its request, the credit and the audit row alike but for
    # the ids, the times and what is the invoice's own.
    fast = ready_to_process(issue_invoice(customer), finance_user)
    slow = ready_to_process(issue_invoice(customer), finance_user)
    return_process_task(fast.pk)
    with monkeypatch.context() as patched:
        patched.setattr(sql, "writes_in_with", lambda: False)
        return_process_task(slow.pk)

    def written(rr):
        rr = ReturnRequest.objects.select_related("invoice", "tax_request").get(pk=rr.pk)
        assert rr.state == ReturnState.COMPLETED
        credit = LedgerEntry.objects.get(invoice=rr.invoice, kind=LedgerKind.INVOICE_RETURNED)
        entry = AuditEntry.objects.get(
            object_type="invoices.taxrequest",
            object_id=str(rr.tax_request_id),
            action="tax.outcome_recorded",
        )
        return rr.invoice, rr.tax_request, credit, entry

    varying = {"id", "code", "number", "issued_at", "state_changed_at", "created_at", "at"}
    varying |= {"application_id"}
    varying |= {"serial", "completed_at", "submitted_at", "invoice_id", "object_id", "params"}
    for fast_row, slow_row in zip(written(fast), written(slow), strict=True):
        assert _row(fast_row, without=varying) == _row(slow_row, without=varying)
    invoice, tax_request, credit, entry = written(fast)
    assert invoice.state == InvoiceState.VOIDED
    assert invoice.state_changed_at == tax_request.completed_at
    assert (credit.amount, credit.customer_id) == (invoice.total, invoice.customer_id)
    assert entry.params["credited"] == str(invoice.total)
    assert entry.params["serial"] == tax_request.serial
    assert tax_request.completed_at <= credit.created_at <= entry.at


def test_p3_an_outcome_for_a_request_that_is_gone_is_refused_as_the_orm_refuses_it(invoice):
    gone_invoice = Invoice.objects.get(pk=invoice.pk)
    gone_request = TaxRequest(pk=987654321, invoice=gone_invoice)
    credit = LedgerEntry(
        customer_id=invoice.customer_id,
        kind=LedgerKind.INVOICE_RETURNED,
        amount=invoice.total,
        invoice=invoice,
    )
    audit = {"actor": Actor.system("tests"), "action": "tax.outcome_recorded"}

    with transaction.atomic(), pytest.raises(DatabaseError, match="did not affect any rows"):
        tax_services._outcome_write(gone_invoice, gone_request, credit, audit)
    assert not LedgerEntry.objects.filter(invoice=invoice).exists()


def test_p3_a_transition_of_a_return_that_is_gone_is_refused_as_the_orm_refuses_it(invoice):
    rr = submit(invoice)
    gone = ReturnRequest.objects.get(pk=rr.pk)
    gone.pk = 987654321

    with transaction.atomic(), pytest.raises(DatabaseError, match="did not affect any rows"):
        _common._transition(gone, to_state=ReturnState.CANCELLED, actor=Actor.system("tests"))
    assert not AuditEntry.objects.filter(object_id="987654321").exists()


def test_p3_no_save_signal_listens_to_the_rows_written_out():
    # ``Model.save`` sends pre_save and post_save; the written-out statements do not. A receiver
    # added for one of these models must come with a change to the statement that writes it.
    from django.db.models.signals import post_save, pre_save

    from core.models import OutboxMessage
    from invoices.models import NumberSequence, TaxSandboxOperation
    from notifications.models import EmailNotification, SmsMessage
    from returns.models import ReturnEvent

    written = (ReturnRequest, ReturnEvent, AuditEntry, SmsMessage, EmailNotification)
    written += (OutboxMessage, TaxSandboxOperation, NumberSequence)
    written += (Invoice, TaxRequest, LedgerEntry)
    for model in written:
        assert not pre_save.has_listeners(model), model
        assert not post_save.has_listeners(model), model
