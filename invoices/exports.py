"""The month-end exports of invoices and of the invoiceable-amount ledger: their columns and
their rows, read one at a time (``core.exports`` writes them as .xlsx or CSV)."""

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from core.exports import Column, ColumnKind
from invoices.models import (
    CENT,
    INVOICE_KIND_LABELS,
    Invoice,
    InvoiceMedium,
    InvoiceState,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
)

CHUNK = 2000

INVOICE_COLUMNS = [
    Column(_("invoice code"), width=14),
    Column(_("invoice number"), width=22),
    Column(_("kind"), width=30),
    Column(_("customer"), width=30),
    Column(_("taxpayer ID"), width=22),
    Column(_("issued at"), ColumnKind.DATETIME, width=18),
    Column(_("amount before tax"), ColumnKind.MONEY),
    Column(_("tax rate"), ColumnKind.RATE, width=8),
    Column(_("tax"), ColumnKind.MONEY),
    Column(_("total"), ColumnKind.MONEY),
    Column(_("state"), width=12),
    Column(_("issuer name"), width=30),
]


def invoice_export_rows(invoices: QuerySet[Invoice]) -> Iterator[list[Any]]:
    """One row per invoice of ``invoices`` (the back office's filtered list), in its order.
    Labels are rendered now, in the active language; the rows are read while they stream."""
    states = {value: str(label) for value, label in InvoiceState.choices}
    kinds = {key: str(label) for key, label in INVOICE_KIND_LABELS.items()}
    values = invoices.values_list(
        "code",
        "number",
        "medium",
        "invoice_type",
        "customer__name",
        "customer__taxpayer_id",
        "issued_at",
        "amount",
        "tax_rate",
        "tax",
        "total",
        "state",
        "issuer_name",
    )
    return _invoice_rows(values.iterator(chunk_size=CHUNK), states, kinds)


def _invoice_rows(
    values: Iterator[tuple[Any, ...]], states: dict[str, str], kinds: dict[Any, str]
) -> Iterator[list[Any]]:
    for row in values:
        (code, number, medium, kind, name, taxpayer_id, issued_at, *figures, state, issuer) = row
        yield [
            code,
            number,
            kinds[InvoiceMedium(medium), InvoiceType(kind)],
            name,
            taxpayer_id,
            issued_at,
            *figures,
            states.get(state, state),
            issuer,
        ]


LEDGER_COLUMNS = [
    Column(_("entry"), ColumnKind.INTEGER, width=10),
    Column(_("created at"), ColumnKind.DATETIME, width=18),
    Column(_("customer"), width=30),
    Column(_("taxpayer ID"), width=22),
    Column(_("kind"), width=22),
    Column(_("amount"), ColumnKind.MONEY),
    Column(_("balance"), ColumnKind.MONEY),
    Column(_("invoice code"), width=14),
    Column(_("invoice number"), width=22),
]

# The running balance is each customer's whole ledger summed in order, whatever the list was
# filtered by: the window runs over every entry of the customers concerned, and the filter
# picks the rows shown afterwards. (Django puts a queryset's filters before its windows.)
_LEDGER_SQL = """
SELECT e.id, e.created_at, c.name, c.taxpayer_id, e.kind, e.amount, e.balance, i.code, i.number
FROM (
    SELECT id, customer_id, invoice_id, created_at, kind, amount,
           SUM(amount) OVER (PARTITION BY customer_id ORDER BY id) AS balance
    FROM invoices_ledgerentry
    WHERE customer_id IN (SELECT customer_id FROM invoices_ledgerentry WHERE id IN ({shown}))
) e
JOIN invoices_customer c ON c.id = e.customer_id
LEFT JOIN invoices_invoice i ON i.id = e.invoice_id
WHERE e.id IN ({shown})
ORDER BY e.customer_id, e.id
"""


def ledger_export_rows(entries: QuerySet[LedgerEntry]) -> Iterator[list[Any]]:
    """The entries of ``entries`` (the filtered list), by customer and in order, each with the
    customer's balance after it (the running sum of its whole ledger)."""
    shown_sql, shown_params = entries.order_by().values("pk").query.sql_with_params()
    sql = _LEDGER_SQL.format(shown=shown_sql)
    kinds = {value: str(label) for value, label in LedgerKind.choices}
    return _ledger_rows(sql, [*shown_params, *shown_params], kinds)


def _aware(value: Any) -> dt.datetime:
    """PostgreSQL gives an aware datetime; SQLite (local development) an ISO string in UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _money(value: Any) -> Decimal:
    """PostgreSQL gives a Decimal; SQLite a float or a string: back to two places."""
    return Decimal(str(value)).quantize(CENT)


def _ledger_rows(sql: str, params: list[Any], kinds: dict[str, str]) -> Iterator[list[Any]]:
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(CHUNK):
            for (
                entry_id,
                created_at,
                name,
                taxpayer_id,
                kind,
                amount,
                balance,
                code,
                number,
            ) in batch:
                yield [
                    entry_id,
                    _aware(created_at),
                    name,
                    taxpayer_id,
                    kinds.get(kind, kind),
                    _money(amount),
                    _money(balance),
                    code or "",
                    number or "",
                ]
