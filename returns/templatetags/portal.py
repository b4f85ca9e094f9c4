"""Formatting for the customer portal's pages."""

from decimal import Decimal

from django import template

from invoices.tax import rate_as_printed

register = template.Library()


@register.filter
def percent(rate: Decimal | None) -> str:
    """A tax rate as invoices print it: 0.060 → "6%", 0.015 → "1.5%"."""
    if rate is None or rate == "":
        return ""
    return rate_as_printed(Decimal(rate))
