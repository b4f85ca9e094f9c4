"""The four figures every VAT invoice prints: amount (金额), tax rate (税率), tax (税额) and
total (价税合计), and the one rounding rule between them.

The customer applies for a total (the invoiceable amount is tax included, as the provider's
bills are). The amount before tax is the total divided by (1 + rate), rounded half-up to the
fen; the tax is what remains, so amount + tax = total to the fen on every invoice. That is how
tax-control invoicing software splits a price that includes tax (含税开票); the tax differs from
amount * rate by at most one fen, inside the tax bureau's tolerance (税额误差 ≤ 0.06 yuan).
Computing tax = round(amount * rate) as well would leave some totals with no amount at all.
A red-letter invoice prints the original's four figures, negated.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from invoices.models import CENT, DEFAULT_TAX_RATE, Invoice, RedLetterInvoice


@dataclass(frozen=True)
class TaxBreakdown:
    amount: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal

    def negated(self) -> "TaxBreakdown":
        return TaxBreakdown(-self.amount, self.tax_rate, -self.tax, -self.total)

    def as_fields(self) -> dict[str, Decimal]:
        return {
            "amount": self.amount,
            "tax_rate": self.tax_rate,
            "tax": self.tax,
            "total": self.total,
        }


def breakdown_from_total(total: Decimal, rate: Decimal = DEFAULT_TAX_RATE) -> TaxBreakdown:
    """Split a total that includes tax: amount half-up to the fen, tax the remainder."""
    amount = (total / (Decimal(1) + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
    return TaxBreakdown(amount=amount, tax_rate=rate, tax=total - amount, total=total)


def breakdown_of(row: Invoice | RedLetterInvoice) -> TaxBreakdown:
    """The figures printed on an invoice or a red-letter invoice."""
    return TaxBreakdown(amount=row.amount, tax_rate=row.tax_rate, tax=row.tax, total=row.total)


def rate_as_printed(rate: Decimal) -> str:
    """A tax rate as invoices print it: 0.060 → "6%", 0.015 → "1.5%"."""
    return f"{(rate * 100).normalize():f}%"


def money_as_written(value: Decimal | int | str | None) -> str:
    """An amount of yuan as people write it, in every language the portal speaks: two decimals,
    thousands grouped, the yuan sign first ("¥12,345.67"); a red-letter figure keeps its minus
    after the sign, as the invoice prints it ("¥-1,000.00"). The one place money is formatted
    for customers (the ``money`` template filter and the portal's messages)."""
    if value is None or value == "":
        return ""
    figure = Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    return f"¥{figure:,.2f}"
