"""Formatting for the customer portal's pages, and the rules its templates ask."""

from decimal import Decimal

from django import template

from invoices.models import Invoice
from invoices.rules import invoice_is_returnable, invoice_issued_by_provider
from invoices.tax import money_as_written, rate_as_printed
from returns import selectors
from returns.rules import invoice_can_be_booked, invoice_can_be_certified

register = template.Library()


@register.filter
def percent(rate: Decimal | None) -> str:
    """A tax rate as invoices print it: 0.060 → "6%", 0.015 → "1.5%"."""
    if rate is None or rate == "":
        return ""
    return rate_as_printed(Decimal(rate))


@register.filter
def money(value: Decimal | None) -> str:
    """Yuan as people write them: ``¥12,345.67`` (``invoices.tax.money_as_written``)."""
    return money_as_written(value)


@register.filter
def earlier_returns(invoice: Invoice) -> list:
    """``returns.selectors.earlier_returns``: the invoice's other returns (R11), no query."""
    return selectors.earlier_returns(invoice)


@register.filter
def can_be_certified(invoice: Invoice) -> bool:
    """R3 (``returns.rules``): whether the return asks "has this invoice been certified?"."""
    return invoice_can_be_certified(invoice)


@register.filter
def can_be_booked(invoice: Invoice) -> bool:
    """R3 (``returns.rules``): whether the return asks "has the buyer booked this invoice or
    confirmed its use?" (a digital invoice, 数电票) instead of the paper questions."""
    return invoice_can_be_booked(invoice)


@register.filter
def issued_by_provider(invoice: Invoice) -> bool:
    """R1 (``invoices.rules``): only the provider's own invoices are returned here."""
    return invoice_issued_by_provider(invoice)


@register.filter
def returnable(invoice: Invoice) -> bool:
    """R1 (``invoices.rules``): whether the Refund button is offered."""
    return invoice_is_returnable(invoice)
