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


@pytest.mark.parametrize("model", [InvoiceApplication, Invoice])
def test_applications_and_invoices_have_positive_amounts(invoice, model):
    row = invoice.application if model is InvoiceApplication else invoice
    refused(lambda: model.objects.filter(pk=row.pk).update(amount=Decimal("0.00")))
    model.objects.filter(pk=row.pk).update(amount=Decimal("0.01"))
    row.refresh_from_db()
    assert row.amount == Decimal("0.01")


def test_a_provider_invoice_needs_its_application_a_marketplace_one_does_not(customer):
    market = marketplace_invoice(customer)
    assert market.application_id is None
    refused(lambda: Invoice.objects.filter(pk=market.pk).update(issuer=Issuer.PROVIDER))


def test_red_letter_invoices_have_unique_well_formed_numbers(customer):
    first, second = issue_invoice(customer), issue_invoice(customer)
    RedLetterInvoice.objects.create(
        original=first,
        code=first.code,
        number="90000001",
        amount=-first.amount,
        issued_at=first.issued_at,
    )
    make = lambda number: RedLetterInvoice.objects.create(  # noqa: E731
        original=second,
        code=second.code,
        number=number,
        amount=-second.amount,
        issued_at=second.issued_at,
    )
    refused(lambda: make("90000001"))  # the same code and number again
    refused(lambda: make("9000001"))  # seven digits
    assert make("90000002").pk


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
        special_invoice, certified=True, red_letter_form=pdf_upload(), red_letter_form_number="A1"
    )
    form = rr.red_letter_forms.get()
    refused(lambda: RedLetterForm.objects.filter(pk=form.pk).update(form_number=""))
    assert RedLetterForm.objects.get(pk=form.pk).form_number == "A1"


def test_a_customers_profile_names_are_unique_but_other_customers_may_reuse_them(customer):
    from invoices.models import InvoiceProfile
    from tests.factories import CustomerFactory, mailing_fields

    fields = {"invoice_type": "ordinary", "title": "Example Co.", **mailing_fields()}
    InvoiceProfile.objects.create(customer=customer, name="Head office", **fields)
    refused(lambda: InvoiceProfile.objects.create(customer=customer, name="Head office", **fields))
    other = CustomerFactory()
    assert InvoiceProfile.objects.create(customer=other, name="Head office", **fields).pk
