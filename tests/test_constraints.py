"""Database constraints not already covered by the rule tests, each tested both ways: the
violating row is refused by PostgreSQL, and the valid row next to it is accepted."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from invoices.models import (
    Invoice,
    InvoiceApplication,
    Issuer,
    LedgerEntry,
    LedgerKind,
    RedLetterInvoice,
    Statement,
)
from returns.models import RedLetterForm
from tests.factories import StatementFactory, issue_invoice, marketplace_invoice
from tests.returns_helpers import pdf_upload, submit

pytestmark = pytest.mark.django_db


def refused(make) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        make()


def test_one_statement_per_customer_and_month(customer):
    first = StatementFactory(customer=customer, period=dt.date(2026, 9, 1))
    refused(lambda: StatementFactory(customer=customer, period=first.period))
    assert StatementFactory(customer=customer, period=dt.date(2026, 10, 1)).pk


@pytest.mark.parametrize(
    ("field", "bad", "good"),
    [
        ("amount", Decimal("0.00"), Decimal("0.01")),
        ("period", dt.date(2026, 9, 2), dt.date(2026, 9, 1)),
    ],
)
def test_a_statement_is_positive_and_for_a_whole_month(customer, field, bad, good):
    statement = StatementFactory(customer=customer, period=dt.date(2026, 9, 1))
    refused(lambda: Statement.objects.filter(pk=statement.pk).update(**{field: bad}))
    Statement.objects.filter(pk=statement.pk).update(**{field: good})
    statement.refresh_from_db()
    assert getattr(statement, field) == good


def test_applications_have_positive_amounts(invoice):
    row = invoice.application
    refused(lambda: InvoiceApplication.objects.filter(pk=row.pk).update(amount=Decimal("0.00")))
    InvoiceApplication.objects.filter(pk=row.pk).update(amount=Decimal("0.01"))
    row.refresh_from_db()
    assert row.amount == Decimal("0.01")


def test_invoices_have_a_positive_amount_and_a_total_of_amount_plus_tax(invoice):
    rows = Invoice.objects.filter(pk=invoice.pk)
    refused(lambda: rows.update(amount=Decimal("0.00"), total=invoice.tax))
    refused(lambda: rows.update(total=invoice.total + Decimal("0.01")))  # amount + tax ≠ total
    refused(lambda: rows.update(tax=Decimal("-0.01"), total=invoice.amount - Decimal("0.01")))
    rows.update(amount=Decimal("0.01"), total=Decimal("0.01") + invoice.tax)
    invoice.refresh_from_db()
    assert (invoice.amount, invoice.total) == (Decimal("0.01"), Decimal("0.01") + invoice.tax)


def test_a_provider_invoice_needs_its_application_a_marketplace_one_does_not(customer):
    market = marketplace_invoice(customer)
    assert market.application_id is None
    refused(lambda: Invoice.objects.filter(pk=market.pk).update(issuer=Issuer.PROVIDER))


def test_red_letter_invoices_have_unique_well_formed_numbers(customer):
    first, second = issue_invoice(customer), issue_invoice(customer)

    def make(original, number, code="3300201130", form_number=""):
        return RedLetterInvoice.objects.create(
            original=original,
            code=code,
            number=number,
            amount=-original.amount,
            tax_rate=original.tax_rate,
            tax=-original.tax,
            total=-original.total,
            red_letter_form_number=form_number,
            issued_on=dt.date(2026, 11, 30),
        )

    make(first, "90000001")
    refused(lambda: make(second, "90000001"))  # the same code and number again
    refused(lambda: make(second, "9000001"))  # seven digits
    refused(lambda: make(second, "90000002", code="33002011"))  # an eight-digit code
    refused(lambda: make(second, "90000002", form_number="44031"))  # a short form number
    assert make(second, "90000002", form_number="4403202612000001").pk


def test_one_ledger_credit_per_settled_statement(customer):
    statement = StatementFactory(customer=customer)
    credit = {
        "customer": customer,
        "kind": LedgerKind.STATEMENT_SETTLED,
        "amount": statement.amount,
    }
    LedgerEntry.objects.create(statement=statement, **credit)
    refused(lambda: LedgerEntry.objects.create(statement=statement, **credit))
    other = StatementFactory(customer=customer)
    assert LedgerEntry.objects.create(**(credit | {"statement": other})).pk


def test_a_red_letter_form_has_a_form_number(special_invoice):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    form = rr.red_letter_forms.get()
    refused(lambda: RedLetterForm.objects.filter(pk=form.pk).update(form_number=""))
    assert RedLetterForm.objects.get(pk=form.pk).form_number == "4403202612000011"


def test_a_customers_profile_names_are_unique_but_other_customers_may_reuse_them(customer):
    from invoices.models import InvoiceProfile
    from tests.factories import CustomerFactory, mailing_fields

    fields = {"invoice_type": "ordinary", "title": "Example Co.", **mailing_fields()}
    InvoiceProfile.objects.create(customer=customer, name="Head office", **fields)
    refused(lambda: InvoiceProfile.objects.create(customer=customer, name="Head office", **fields))
    other = CustomerFactory()
    assert InvoiceProfile.objects.create(customer=other, name="Head office", **fields).pk
