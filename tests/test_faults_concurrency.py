"""Fault 4: a crowd of simultaneous requests on real PostgreSQL (R2, R10).

Injected: 200 Refund submissions on one invoice, and 50 invoice applications against one
invoiceable amount, each in its own thread and connection. PostgreSQL here allows 100
connections shared with other work, so they run in waves behind a barrier (40 and 25 at a
time): every request of a wave hits the database at the same instant. Counted: returns
created, refusals, applications granted, the remaining amount, and ``check_ledger``.
"""

from decimal import Decimal

import pytest
from django.core.management import call_command

from invoices.exceptions import InsufficientInvoiceableAmount
from invoices.models import InvoiceApplication, LedgerEntry
from invoices.selectors import invoiceable_amount
from returns.exceptions import ReturnAlreadyOpen
from returns.models import ReturnRequest
from tests.concurrency import run_concurrently
from tests.factories import CustomerFactory, fund, issue_invoice
from tests.returns_helpers import submit
from tests.test_invoices_rules import apply

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Waves of 40 connections: under xdist, never two of these at once on PostgreSQL's 100.
    pytest.mark.xdist_group("many_connections"),
]


def _in_waves(call, *, total: int, wave: int) -> list:
    results: list = []
    for start in range(0, total, wave):
        results += run_concurrently(*[call for _ in range(min(wave, total - start))])
    return results


def test_r2_fault_200_concurrent_refund_submissions_create_one_return():
    invoice = issue_invoice(CustomerFactory())

    results = _in_waves(lambda: submit(invoice), total=200, wave=40)

    created = [r for r in results if isinstance(r, ReturnRequest)]
    refused = [r for r in results if isinstance(r, ReturnAlreadyOpen)]
    assert len(results) == 200
    assert len(created) == 1, [r for r in results if not isinstance(r, ReturnAlreadyOpen)]
    assert len(refused) == 199
    assert ReturnRequest.objects.filter(invoice=invoice).count() == 1
    call_command("check_ledger")


def test_r10_fault_50_concurrent_applications_never_overdraw_the_invoiceable_amount():
    customer = CustomerFactory()
    fund(customer, "1000.00")

    results = _in_waves(lambda: apply(customer, "60.00"), total=50, wave=25)

    granted = [r for r in results if isinstance(r, InvoiceApplication)]
    refused = [r for r in results if isinstance(r, InsufficientInvoiceableAmount)]
    assert len(granted) == 16, results  # 16 x 60.00 = 960.00 <= 1000.00 < 17 x 60.00
    assert len(refused) == 34
    assert invoiceable_amount(customer_id=customer.pk) == Decimal("40.00")
    assert LedgerEntry.objects.filter(customer=customer, amount__lt=0).count() == 16
    call_command("check_ledger")  # includes "never negative" over the running balance
