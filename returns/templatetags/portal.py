"""Formatting for the customer portal's pages."""

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def percent(rate: Decimal | None) -> str:
    """A tax rate as invoices print it: 0.060 → "6%", 0.015 → "1.5%"."""
    if rate is None or rate == "":
        return ""
    value = (Decimal(rate) * 100).normalize()
    return f"{value:f}%"
