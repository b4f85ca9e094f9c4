"""check_ledger and the tax-system boundary: no credit without the tax system's recorded outcome,
red-letter figures equal to the original's negated (R6, R7)."""

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from invoices.models import (
    Invoice,
    InvoiceState,
    LedgerEntry,
    LedgerKind,
    RedLetterInvoice,
    TaxRequest,
)
from tests.tax_helpers import void_or_reverse
from tests.test_taxsystem import last_month

pytestmark = pytest.mark.django_db


def check_ledger_report() -> str:
    err = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("check_ledger", stdout=StringIO(), stderr=err)
    assert excinfo.value.returncode == 1
    return err.getvalue()


def test_check_ledger_passes_after_an_outcome_recorded_through_the_tax_system(customer):
    from tests.factories import issue_invoice

    void_or_reverse(issue_invoice(customer, issued_at=last_month()))
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "OK" in out.getvalue()


def test_r7_check_ledger_finds_a_credit_without_a_recorded_tax_outcome(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(state=InvoiceState.VOIDED)
    LedgerEntry.objects.create(
        customer=invoice.customer,
        kind=LedgerKind.INVOICE_RETURNED,
        amount=invoice.total,
        invoice=invoice,
    )
    report = check_ledger_report()
    assert f"invoice {invoice.code} {invoice.number} credited without a recorded tax outcome" in (
        report
    )


def test_r6_check_ledger_finds_red_letter_figures_that_are_not_the_originals_negated(invoice):
    tax_request = void_or_reverse(invoice)  # a void: the invoice then gets a wrong red letter
    Invoice.objects.filter(pk=invoice.pk).update(state=InvoiceState.REVERSED)
    RedLetterInvoice.objects.create(
        original=invoice,
        code="3300262130",
        number="61000009",
        amount=-invoice.amount - Decimal("0.01"),
        tax_rate=invoice.tax_rate,
        tax=-invoice.tax + Decimal("0.01"),  # the total still adds up, the split does not
        total=-invoice.total,
        issued_on=dt.date(2026, 11, 30),
    )
    report = check_ledger_report()
    assert f"invoice {invoice.code} {invoice.number}: red-letter amounts are not" in report
    assert f"tax request {tax_request.serial}: void recorded but invoice" in report


def test_the_legacy_migration_gives_old_outcomes_a_request_and_check_ledger_passes(invoice):
    """A void recorded before the boundary (state + credit, no request) gets a request marked
    ``before-boundary`` from migration 0007, so every credit has a recorded outcome."""
    import importlib

    from django.apps import apps
    from django.db import connection

    Invoice.objects.filter(pk=invoice.pk).update(state=InvoiceState.VOIDED)
    LedgerEntry.objects.create(
        customer=invoice.customer,
        kind=LedgerKind.INVOICE_RETURNED,
        amount=invoice.total,
        invoice=invoice,
    )
    assert "without a recorded tax outcome" in check_ledger_report()
    migration = importlib.import_module("invoices.migrations.0007_legacy_tax_outcomes")
    with connection.schema_editor() as schema_editor:
        migration.backfill(apps, schema_editor)
    legacy = TaxRequest.objects.get(invoice=invoice)
    assert (legacy.backend, legacy.state, legacy.operation) == ("before-boundary", "done", "void")
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "OK" in out.getvalue()


# --- digital invoices (数电票) -----------------------------------------------------------------


def _digital_reversed(customer, django_capture_on_commit_callbacks, *, booked=False):
    from invoices.models import InvoiceType
    from returns.models import ReturnRequest
    from tests.factories import issue_digital_invoice
    from tests.returns_helpers import submit

    invoice = issue_digital_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    with django_capture_on_commit_callbacks(execute=True):
        rr = submit(invoice, buyer_booked=booked)
    if booked:
        from returns.services import return_request_simulate_buyer

        with django_capture_on_commit_callbacks(execute=True):
            return_request_simulate_buyer(
                return_request_id=rr.pk, customer_id=customer.pk, confirmed=True
            )
    rr = ReturnRequest.objects.get(pk=rr.pk)
    assert rr.state == "completed"
    return invoice, rr


def test_check_ledger_passes_after_digital_returns(customer, django_capture_on_commit_callbacks):
    _digital_reversed(customer, django_capture_on_commit_callbacks)
    _digital_reversed(customer, django_capture_on_commit_callbacks, booked=True)
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "OK" in out.getvalue()


def test_check_ledger_finds_a_digital_red_letter_row_that_disagrees_with_its_original(
    customer, django_capture_on_commit_callbacks
):
    from django.db import connection

    invoice, _rr = _digital_reversed(customer, django_capture_on_commit_callbacks)
    red = invoice.red_letter_invoice
    table = RedLetterInvoice._meta.db_table
    with connection.cursor() as cursor:  # past the append-only trigger, as a bad restore would
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(
            f"UPDATE {table} SET medium = 'paper', code = '3300262130', number = '61000001',"  # noqa: S608
            f" red_letter_form_number = '' WHERE id = %s",
            [red.pk],
        )
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    report = check_ledger_report()
    assert (
        f"red-letter invoice 3300262130 61000001 is paper but its original {invoice.number} "
        "is digital"
    ) in report


def test_check_ledger_finds_a_confirmed_reversal_without_the_buyers_decision(
    customer, django_capture_on_commit_callbacks
):
    _invoice, rr = _digital_reversed(customer, django_capture_on_commit_callbacks, booked=True)
    TaxRequest.objects.filter(pk=rr.tax_request_id).update(buyer_decision="")
    report = check_ledger_report()
    assert f"tax request {rr.tax_request.serial}: the buyer had to confirm form" in report


def test_check_ledger_finds_a_digital_invoice_without_its_file(customer):
    from tests.factories import issue_digital_invoice

    invoice = issue_digital_invoice(customer)
    Invoice.objects.filter(pk=invoice.pk).update(document="")
    report = check_ledger_report()
    assert f"digital invoice {invoice.number} has no file" in report


def test_check_ledger_finds_a_tax_request_whose_medium_is_not_its_invoices(customer):
    from tests.factories import issue_invoice

    tax_request = void_or_reverse(issue_invoice(customer, issued_at=last_month()))
    TaxRequest.objects.filter(pk=tax_request.pk).update(medium="digital")
    report = check_ledger_report()
    invoice = tax_request.invoice
    assert (
        f"tax request {tax_request.pk} is digital but invoice {invoice.code} {invoice.number} "
        "is paper"
    ) in report
    assert f"tax request {tax_request.serial}: digital reversal recorded without" in report
