"""Amount parsing refuses what is not a plain amount in yuan, with a message, never a 500."""

from decimal import Decimal

import pytest
from django.urls import reverse

from invoices.exceptions import InvalidInvoiceApplication
from invoices.models import InvoiceApplication
from invoices.services import MAX_AMOUNT, money
from tests.factories import VALID_USCC, fund, mailing_fields

DIGITS_ONLY = "Enter the amount in digits (0-9) with at most two decimals, e.g. 1280.50."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", "100.00"),
        ("0.01", "0.01"),
        (" 1280.5 ", "1280.50"),
        ("999999999999.99", "999999999999.99"),
        ("10.100", "10.10"),
    ],
)
def test_plain_amounts_are_accepted(text, expected):
    assert money(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e30", DIGITS_ONLY),
        ("1E2", DIGITS_ONLY),
        ("\uff11\uff10\uff10", DIGITS_ONLY),  # full-width digits
        ("١٢٣", DIGITS_ONLY),  # Arabic-Indic digits
        ("1,000", DIGITS_ONLY),
        ("+5", DIGITS_ONLY),
        ("NaN", DIGITS_ONLY),
        ("Infinity", DIGITS_ONLY),
        ("", DIGITS_ONLY),
        (".5", DIGITS_ONLY),
        ("1000000000000", "The amount is too large: at most 999,999,999,999.99."),
        ("999999999999.995", "The amount is too large: at most 999,999,999,999.99."),
        ("10.001", "An amount has at most two decimal places (fen)."),
        ("0", "The amount must be greater than zero."),
        ("-5", "The amount must be greater than zero."),
    ],
)
def test_bad_amounts_get_a_message(text, message):
    with pytest.raises(InvalidInvoiceApplication) as excinfo:
        money(text)
    assert str(excinfo.value) == message


@pytest.mark.parametrize("value", [Decimal("1e30"), Decimal("NaN"), Decimal("Infinity")])
def test_decimals_from_code_are_bounded_too(value):
    with pytest.raises(InvalidInvoiceApplication):
        money(value)


def test_the_bound_fits_the_amount_columns():
    field = InvoiceApplication._meta.get_field("amount")
    assert len(MAX_AMOUNT.as_tuple().digits) <= field.max_digits


@pytest.fixture
def client_in(client, customer):
    client.force_login(customer.user)
    return client


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("1e30", DIGITS_ONLY),
        ("\uff11\uff10\uff10", DIGITS_ONLY),
        ("99999999999999999999", DIGITS_ONLY),
        ("1000000000000", "The amount is too large"),
    ],
)
def test_the_apply_page_answers_a_bad_amount_with_a_message(client_in, customer, amount, message):
    fund(customer, "500.00")
    data = {
        "invoice_type": "ordinary",
        "amount": amount,
        "title": "Hangzhou Example Trading Co.",
        "taxpayer_id": VALID_USCC,
        **mailing_fields(),
    }
    response = client_in.post(reverse("billing:apply"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not InvoiceApplication.objects.exists()
