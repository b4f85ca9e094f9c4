"""Invoices and the invoiceable-amount ledger: R6 (decision), R7, R10, R13."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction

from invoices.exceptions import (
    ApplicationAlreadyIssued,
    DuplicateInvoiceNumber,
    InsufficientInvoiceableAmount,
    InvalidInvoiceApplication,
    InvalidTaxpayerId,
    InvoiceNotReturnable,
)
from invoices.models import (
    Customer,
    CustomerKind,
    Invoice,
    InvoiceState,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
    RedLetterInvoice,
    TaxRequest,
)
from invoices.rules import void_or_reverse_decision
from invoices.selectors import invoiceable_amount
from invoices.services import (
    invoice_application_create,
    invoice_issue,
)
from invoices.taxpayer import validate_taxpayer_id
from tests.factories import (
    VALID_USCC,
    CustomerFactory,
    fund,
    mailing_fields,
    special_fields,
    take_return_credit,
)
from tests.tax_helpers import void_or_reverse

SHANGHAI = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db


def apply(customer: Customer, amount="100.00", invoice_type=InvoiceType.ORDINARY, **extra):
    fields = (
        special_fields() if invoice_type == InvoiceType.SPECIAL else {"taxpayer_id": VALID_USCC}
    )
    fields.update(extra)
    return invoice_application_create(
        customer_id=customer.pk,
        invoice_type=invoice_type,
        title="Example Co.",
        amount=amount,
        **mailing_fields(),
        **fields,
    )


# R6: void or reverse, decided in Asia/Shanghai -------------------------------------------


def test_r6_same_month_uncertified_is_voided():
    issued = dt.datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI)
    now = dt.datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)
    assert void_or_reverse_decision(issued_at=issued, certified=False, now=now) == "voided"


def test_r6_same_month_certified_is_reversed():
    issued = dt.datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI)
    now = dt.datetime(2026, 11, 3, 10, 0, tzinfo=SHANGHAI)
    assert void_or_reverse_decision(issued_at=issued, certified=True, now=now) == "reversed"


def test_r6_issued_2359_on_the_31st_processed_0001_on_the_1st_is_reversed():
    issued = dt.datetime(2026, 10, 31, 23, 59, tzinfo=SHANGHAI)
    now = dt.datetime(2026, 11, 1, 0, 1, tzinfo=SHANGHAI)
    assert void_or_reverse_decision(issued_at=issued, certified=False, now=now) == "reversed"


def test_r6_month_is_judged_in_shanghai_not_utc():
    # 2026-10-31 17:00 UTC is already 2026-11-01 01:00 in Shanghai: same month as 11-30.
    issued = dt.datetime(2026, 10, 31, 17, 0, tzinfo=dt.UTC)
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=SHANGHAI)
    assert void_or_reverse_decision(issued_at=issued, certified=False, now=now) == "voided"
    # ...while 15:59 UTC on the 31st is still October in Shanghai.
    issued = dt.datetime(2026, 10, 31, 15, 59, tzinfo=dt.UTC)
    assert void_or_reverse_decision(issued_at=issued, certified=False, now=now) == "reversed"


def test_r6_same_month_number_in_another_year_is_reversed():
    issued = dt.datetime(2025, 11, 5, tzinfo=SHANGHAI)
    now = dt.datetime(2026, 11, 5, tzinfo=SHANGHAI)
    assert void_or_reverse_decision(issued_at=issued, certified=False, now=now) == "reversed"


def test_r6_reversal_issues_a_negative_red_letter_invoice_with_the_form_number(special_invoice):
    later = special_invoice.issued_at + dt.timedelta(days=40)
    tax_request = void_or_reverse(
        special_invoice, certified=True, form_number="4403202612000001", now=later
    )
    assert tax_request.operation == "red_letter"
    red = RedLetterInvoice.objects.get(original=special_invoice)
    assert (red.amount, red.tax, red.total) == (
        -special_invoice.amount,
        -special_invoice.tax,
        -special_invoice.total,
    )
    assert red.tax_rate == special_invoice.tax_rate
    assert red.red_letter_form_number == "4403202612000001"
    assert red.number != special_invoice.number
    assert len(red.number) == 8
    special_invoice.refresh_from_db()
    assert special_invoice.state == InvoiceState.REVERSED


def test_r6_an_invoice_is_voided_or_reversed_at_most_once(invoice):
    void_or_reverse(invoice)
    with pytest.raises(InvoiceNotReturnable):
        void_or_reverse(invoice)
    assert (
        LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED).count() == 1
    )


def test_r6_void_issues_no_red_letter_invoice(invoice):
    assert void_or_reverse(invoice).operation == "void"
    assert not RedLetterInvoice.objects.filter(original=invoice).exists()


def red_letter_row(original: Invoice, **overrides) -> RedLetterInvoice:
    fields = {
        "original": original,
        "code": "3300201130",
        "number": "99999999",
        "amount": -original.amount,
        "tax_rate": original.tax_rate,
        "tax": -original.tax,
        "total": -original.total,
        "issued_on": dt.date(2026, 11, 30),
    } | overrides
    return RedLetterInvoice.objects.create(**fields)


def test_r6_one_red_letter_invoice_per_original_is_enforced_by_the_database(special_invoice):
    void_or_reverse(
        special_invoice,
        certified=True,
        form_number="4403202612000001",
        now=special_invoice.issued_at + dt.timedelta(days=40),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        red_letter_row(special_invoice)


def test_r6_a_red_letter_invoice_row_with_negated_figures_is_accepted(invoice):
    assert red_letter_row(invoice).total == -invoice.total


def test_r6_red_letter_invoice_amount_must_be_negative(invoice):
    with pytest.raises(IntegrityError), transaction.atomic():
        red_letter_row(invoice, amount=invoice.total, total=invoice.amount - invoice.tax)


def test_r6_red_letter_invoice_total_must_be_amount_plus_tax(invoice):
    with pytest.raises(IntegrityError), transaction.atomic():
        red_letter_row(invoice, total=-invoice.total - Decimal("0.01"))


# R7: the amount goes back exactly once --------------------------------------------------


def test_r7_void_credits_the_invoiced_amount_back_as_a_new_ledger_entry(invoice):
    customer_id = invoice.customer_id
    before = invoiceable_amount(customer_id=customer_id)
    entries_before = LedgerEntry.objects.count()
    void_or_reverse(invoice)
    assert invoiceable_amount(customer_id=customer_id) == before + invoice.total
    assert LedgerEntry.objects.count() == entries_before + 1


def test_r7_one_returned_credit_per_invoice_is_enforced_by_the_database(invoice):
    take_return_credit(invoice)
    with pytest.raises(IntegrityError), transaction.atomic():
        take_return_credit(invoice)


def test_r7_returned_credits_of_two_different_invoices_are_allowed(customer):
    from tests.factories import issue_invoice

    first, second = issue_invoice(customer), issue_invoice(customer)
    for inv in (first, second):
        LedgerEntry.objects.create(
            customer=customer, kind=LedgerKind.INVOICE_RETURNED, amount=inv.total, invoice=inv
        )
    assert LedgerEntry.objects.filter(kind=LedgerKind.INVOICE_RETURNED).count() == 2


def test_r7_ledger_entry_sign_must_match_its_kind(customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            customer=customer,
            kind=LedgerKind.INVOICE_APPLIED,
            amount=Decimal("5.00"),
            application=apply(customer_with_funds(customer)),
        )


def customer_with_funds(customer: Customer) -> Customer:
    fund(customer, "1000.00")
    return customer


def test_r7_void_and_credit_are_one_transaction(invoice):
    """If the database refuses the ledger credit, the void is rolled back with it."""
    take_return_credit(invoice)  # the database refuses the credit of the outcome
    with pytest.raises(IntegrityError, match="ledger_one_credit_per_returned_invoice"):
        void_or_reverse(invoice)
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.ISSUED
    assert not TaxRequest.objects.filter(invoice=invoice, state="done").exists()
    assert LedgerEntry.objects.filter(invoice=invoice).count() == 1


# R10: never negative, applications serialised under a customer lock ---------------------


def test_r10_applying_debits_the_invoiceable_amount(customer):
    fund(customer, "500.00")
    apply(customer, "120.50")
    assert invoiceable_amount(customer_id=customer.pk) == Decimal("379.50")


def test_r10_applying_for_more_than_the_invoiceable_amount_is_refused(customer):
    fund(customer, "100.00")
    with pytest.raises(InsufficientInvoiceableAmount, match=r"100\.00"):
        apply(customer, "100.01")
    assert invoiceable_amount(customer_id=customer.pk) == Decimal("100.00")


def test_r10_the_whole_invoiceable_amount_can_be_applied_for(customer):
    fund(customer, "100.00")
    apply(customer, "100.00")
    assert invoiceable_amount(customer_id=customer.pk) == Decimal("0.00")


@pytest.mark.parametrize("bad", ["-5", "0", "0.001", "12.345", "abc", "NaN", "Infinity"])
def test_r10_amounts_must_be_positive_with_at_most_two_decimals(customer, bad):
    fund(customer, "100.00")
    with pytest.raises(InvalidInvoiceApplication):
        apply(customer, bad)


def test_r10_one_debit_per_application_is_enforced_by_the_database(customer):
    fund(customer, "100.00")
    application = apply(customer, "10.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            customer=customer,
            kind=LedgerKind.INVOICE_APPLIED,
            amount=Decimal("-10.00"),
            application=application,
        )


# Issuing --------------------------------------------------------------------------------


def test_issuing_makes_the_application_issued_once(customer):
    fund(customer, "100.00")
    application = apply(customer, "10.00")
    invoice = invoice_issue(application_id=application.pk, code="3300201130", number="00000001")
    assert invoice.state == InvoiceState.ISSUED
    assert invoice.total == Decimal("10.00")
    assert (invoice.amount, invoice.tax) == (Decimal("9.43"), Decimal("0.57"))
    with pytest.raises(ApplicationAlreadyIssued):
        invoice_issue(application_id=application.pk, code="3300201130", number="00000002")


def test_invoice_code_and_number_are_unique(customer):
    fund(customer, "100.00")
    first, second = apply(customer, "10.00"), apply(customer, "10.00")
    invoice_issue(application_id=first.pk, code="3300201130", number="00000001")
    with pytest.raises(DuplicateInvoiceNumber):
        invoice_issue(application_id=second.pk, code="3300201130", number="00000001")
    # The same number under another code is a different invoice.
    assert invoice_issue(application_id=second.pk, code="330020113000", number="00000001")


@pytest.mark.parametrize(
    ("code", "number"),
    [
        ("123456789", "00000001"),
        ("12345678901", "00000001"),
        ("3300201130", "1234567"),
        ("33002011AB", "00000001"),
    ],
)
def test_invoice_code_and_number_formats_are_enforced_by_the_database(invoice, code, number):
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(code=code, number=number)


# R13: taxpayer IDs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        VALID_USCC,
        "91110000600037341l",  # lower case is normalised
        "9111 0000 6000 3734 1L",
        "N2110000MA01234567",  # letters in positions 1-2: allowed by GB 32100, refused by stdnum
        "110108123456789",  # 15 characters
        "11010819900101123X01",  # 20 characters
    ],
)
def test_r13_valid_taxpayer_ids_are_accepted(value):
    assert len(validate_taxpayer_id(value)) in (15, 18, 20)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("91110000600037341M", "check character"),
        ("9111000060003734", "16"),
        ("91110000600037341I", "capital letters except"),
        ("911A0000600037341L", "positions 3 to 8"),
        ("", "0"),
        ("11010812345678?", "only digits"),
    ],
)
def test_r13_invalid_taxpayer_ids_are_refused_with_the_reason(value, why):
    with pytest.raises(InvalidTaxpayerId, match=why):
        validate_taxpayer_id(value)


def test_r13_enterprise_applications_need_a_taxpayer_id(customer):
    fund(customer, "100.00")
    with pytest.raises(InvalidInvoiceApplication, match="taxpayer ID"):
        apply(customer, "10.00", taxpayer_id="")


def test_r13_individuals_may_apply_for_ordinary_invoices_without_a_taxpayer_id():
    individual = CustomerFactory(kind=CustomerKind.INDIVIDUAL, taxpayer_id="")
    fund(individual, "100.00")
    assert apply(individual, "10.00", taxpayer_id="").taxpayer_id == ""


def test_r13_special_invoices_need_registered_address_phone_bank_and_account(customer):
    fund(customer, "100.00")
    with pytest.raises(InvalidInvoiceApplication, match="registered address"):
        apply(customer, "10.00", InvoiceType.SPECIAL, bank_account="")


def test_r13_wrong_check_character_is_refused_on_application(customer):
    fund(customer, "100.00")
    with pytest.raises(InvalidTaxpayerId):
        apply(customer, "10.00", taxpayer_id="91110000600037341M")


def test_r13_enterprise_customer_without_taxpayer_id_is_refused_by_the_database(customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.filter(pk=customer.pk).update(taxpayer_id="")


def test_r13_individual_customer_without_taxpayer_id_is_allowed_by_the_database(customer):
    Customer.objects.filter(pk=customer.pk).update(kind=CustomerKind.INDIVIDUAL, taxpayer_id="")
    customer.refresh_from_db()
    assert customer.taxpayer_id == ""


def test_r13_special_application_without_bank_details_is_refused_by_the_database(customer):
    fund(customer, "100.00")
    application = apply(customer, "10.00", InvoiceType.SPECIAL)
    from invoices.models import InvoiceApplication

    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceApplication.objects.filter(pk=application.pk).update(bank_account="")


def test_customer_mobile_must_be_e164(customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.filter(pk=customer.pk).update(mobile="13800138000")
    Customer.objects.filter(pk=customer.pk).update(mobile="+8613800138000")
    customer.refresh_from_db()
    assert customer.mobile == "+8613800138000"


def test_r7_ledger_entries_cannot_be_updated_in_place(invoice):
    entry = LedgerEntry.objects.filter(customer_id=invoice.customer_id).first()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=Decimal("1.00"))


def test_r7_ledger_entries_cannot_be_deleted(invoice):
    entry = LedgerEntry.objects.filter(customer_id=invoice.customer_id).first()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_r7_new_ledger_entries_can_still_be_appended(invoice):
    before = LedgerEntry.objects.count()
    fund(invoice.customer, "1.00")
    assert LedgerEntry.objects.count() == before + 1


def test_r13_an_individual_asking_for_a_special_invoice_is_told_it_needs_a_taxpayer_id():
    individual = CustomerFactory(kind=CustomerKind.INDIVIDUAL, taxpayer_id="")
    fund(individual, "100.00")
    with pytest.raises(InvalidInvoiceApplication, match="special invoice needs the taxpayer ID"):
        apply(individual, "10.00", InvoiceType.SPECIAL, taxpayer_id="")


def test_r10_applying_and_saving_the_profile_happen_together_or_not_at_all(customer):
    from invoices.models import InvoiceProfile

    fund(customer, "100.00")
    apply(customer, "10.00", save_profile_as="Head office")
    assert (
        InvoiceProfile.objects.get(customer=customer, name="Head office").taxpayer_id == VALID_USCC
    )
    with pytest.raises(InsufficientInvoiceableAmount):
        apply(customer, "1000.00", save_profile_as="Branch")
    assert not InvoiceProfile.objects.filter(name="Branch").exists()


def test_r10_the_invoiceable_amount_is_always_in_fen(customer):
    fund(customer, "100.10")
    apply(customer, "0.05")
    amount = invoiceable_amount(customer_id=customer.pk)
    assert amount == Decimal("100.05")
    assert amount.as_tuple().exponent == -2
