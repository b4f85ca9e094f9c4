"""check_ledger runs its checks at once on connections of their own when no transaction is
open (as from the command line): the same report as one after the other."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from invoices.models import Invoice, InvoiceState, LedgerEntry, LedgerKind

pytestmark = pytest.mark.django_db(transaction=True)


def report(jobs: int) -> str:
    assert not connection.in_atomic_block  # as from the command line
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_ledger", jobs=jobs, stdout=StringIO(), stderr=err)
    return err.getvalue()


def test_check_ledger_reports_the_same_problems_in_the_same_order_with_one_job_or_several():
    call_command("seed_bench", customers=3, invoices=4, stdout=StringIO())
    voided, issued_with_credit = (
        Invoice.objects.order_by("pk").first(),
        Invoice.objects.order_by("pk").last(),
    )
    assert voided.customer_id != issued_with_credit.customer_id
    Invoice.objects.filter(pk=voided.pk).update(state=InvoiceState.VOIDED)
    LedgerEntry.objects.create(
        customer_id=issued_with_credit.customer_id,
        kind=LedgerKind.INVOICE_RETURNED,
        amount=issued_with_credit.total,
        invoice=issued_with_credit,
    )

    serial, parallel = report(jobs=1), report(jobs=3)

    assert parallel == serial
    assert f"{voided.number} is voided but has 0 returned credits" in parallel
    assert f"{issued_with_credit.number} is issued but has a returned credit" in parallel
    assert parallel.index("balances agree") < parallel.index("one returned credit")


def test_check_ledger_passes_with_several_jobs():
    call_command("seed_bench", customers=2, invoices=3, stdout=StringIO())
    out = StringIO()
    call_command("check_ledger", jobs=2, stdout=out)
    assert "OK" in out.getvalue()
