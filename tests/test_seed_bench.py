"""seed_bench writes bulk data that the ledger checks accept."""

from io import StringIO

import pytest
from django.core.management import call_command

from invoices.models import Customer, Invoice, LedgerEntry

pytestmark = pytest.mark.django_db


def test_seed_bench_creates_consistent_bulk_data():
    out = StringIO()
    call_command("seed_bench", customers=5, invoices=7, stdout=out)
    assert "5 customers x 7 invoices" in out.getvalue()
    assert Customer.objects.count() == 5
    assert Invoice.objects.count() == 35
    assert LedgerEntry.objects.count() == 5 + 35  # one credit per statement, one debit each
    check = StringIO()
    call_command("check_ledger", stdout=check)
    assert "OK" in check.getvalue()


def test_seed_bench_can_run_twice_without_collisions():
    call_command("seed_bench", customers=2, invoices=3, stdout=StringIO())
    call_command("seed_bench", customers=2, invoices=3, stdout=StringIO())
    assert Invoice.objects.count() == 12
