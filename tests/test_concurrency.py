"""Races on real PostgreSQL: double clicks, two tabs, parallel applications, parallel tasks."""

from decimal import Decimal

import pytest

from invoices.exceptions import InsufficientInvoiceableAmount
from invoices.models import InvoiceApplication
from invoices.selectors import invoiceable_amount
from returns.exceptions import ReturnAlreadyOpen
from returns.models import ReturnRequest, ReturnState
from returns.services import return_request_process
from tests.concurrency import run_concurrently
from tests.factories import CustomerFactory, UserFactory, fund, issue_invoice
from tests.returns_helpers import assert_returned_exactly_once, log_paper, submit
from tests.test_invoices_rules import apply

pytestmark = pytest.mark.django_db(transaction=True)


def test_r2_two_simultaneous_submits_create_one_return():
    invoice = issue_invoice(CustomerFactory())
    results = run_concurrently(*[lambda: submit(invoice) for _ in range(6)])
    created = [r for r in results if isinstance(r, ReturnRequest)]
    refused = [r for r in results if isinstance(r, ReturnAlreadyOpen)]
    assert len(created) == 1, results
    assert len(refused) == 5, results
    assert ReturnRequest.objects.filter(invoice=invoice).count() == 1


def test_r10_parallel_applications_cannot_overdraw():
    customer = CustomerFactory()
    fund(customer, "100.00")
    results = run_concurrently(*[lambda: apply(customer, "60.00") for _ in range(4)])
    assert sum(isinstance(r, InvoiceApplication) for r in results) == 1, results
    assert sum(isinstance(r, InsufficientInvoiceableAmount) for r in results) == 3
    assert invoiceable_amount(customer_id=customer.pk) == Decimal("40.00")


def test_r4_paper_logged_while_the_customer_submits_is_matched_exactly_once():
    invoice = issue_invoice(CustomerFactory())
    finance = UserFactory(username="finance-race", is_staff=True)
    run_concurrently(
        lambda: submit(invoice),
        lambda: log_paper(invoice, finance),
    )
    rr = ReturnRequest.objects.get(invoice=invoice)
    # Whichever committed first, the return ends up with the paper and is completed
    # (eager Celery ran the task on commit).
    assert rr.mail_receipt is not None
    assert rr.state == ReturnState.COMPLETED


def test_r6_r7_r8_two_process_tasks_at_once_leave_one_void_one_credit_one_sms():
    invoice = issue_invoice(CustomerFactory())
    finance = UserFactory(username="finance-twice", is_staff=True)
    submit(invoice)
    rr = ReturnRequest.objects.get(invoice=invoice)
    # Move to processing without running the task: simulate the broker delivering twice.
    from returns.tasks import return_process_task

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(return_process_task, "delay", lambda *a, **k: None)
        log_paper(invoice, finance)
    rr.refresh_from_db()
    assert rr.state == ReturnState.PROCESSING

    results = run_concurrently(
        *[lambda: return_request_process(return_request_id=rr.pk) for _ in range(4)]
    )
    assert all(isinstance(r, ReturnRequest) for r in results), results
    assert_returned_exactly_once(invoice)
