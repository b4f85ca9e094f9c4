"""seed_bench writes bulk data that the app's constraints and the ledger checks accept."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import F

from invoices.models import (
    Customer,
    Invoice,
    InvoiceApplication,
    InvoiceMedium,
    InvoiceType,
    LedgerEntry,
)

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


def test_seed_bench_covers_paper_and_digital_invoices_of_both_types():
    call_command("seed_bench", customers=2, invoices=6, stdout=StringIO())

    kinds = set(Invoice.objects.values_list("medium", "invoice_type"))
    assert kinds == {(m, t) for m in InvoiceMedium.values for t in InvoiceType.values}
    digital = Invoice.objects.filter(medium=InvoiceMedium.DIGITAL)
    assert digital.count() == 2 * 2  # every third invoice
    for invoice in digital:
        assert invoice.code == ""
        assert re.fullmatch(r"[0-9]{20}", invoice.number)
        with invoice.document.open("rb") as handle:  # the customer can download it
            assert handle.read().startswith(b"%PDF-")
    paper = Invoice.objects.filter(medium=InvoiceMedium.PAPER)
    assert all(len(i.code) == 10 and len(i.number) == 8 for i in paper)
    assert not InvoiceApplication.objects.exclude(medium=F("invoice__medium")).exists()
    assert not InvoiceApplication.objects.filter(
        medium=InvoiceMedium.PAPER, mailing_address=""
    ).exists()


def test_seed_bench_can_run_twice_without_collisions():
    call_command("seed_bench", customers=2, invoices=3, stdout=StringIO())
    call_command("seed_bench", customers=2, invoices=3, stdout=StringIO())
    assert Invoice.objects.count() == 12
