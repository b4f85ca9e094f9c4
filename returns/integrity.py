"""Whole-database invariant checks behind ``check_ledger``; each returns human-readable problems.

Each check is set-based SQL that PostgreSQL runs in a few passes over the big tables (ledger
entries, invoice applications, invoices: a million rows each at a large provider's scale): sums
are grouped once per table, not computed per customer in correlated subqueries, and the rows
that only returns create (returned credits, tax requests, red-letter invoices, returns) are
reached through their own small tables and indexes (the partial unique index on returned
credits), never by scanning the big ones. ``returns/management/commands/check_ledger.py`` runs
them; ``bench/run.py`` times it at a million ledger entries.
"""

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from django.db import connection

from invoices.models import (
    ApplicationState,
    BuyerDecision,
    Customer,
    Invoice,
    InvoiceApplication,
    InvoiceMedium,
    InvoiceState,
    Issuer,
    LedgerEntry,
    LedgerKind,
    NotifyBy,
    RedLetterInvoice,
    Statement,
    TaxOperation,
    TaxRequest,
    TaxRequestState,
)
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnRequest, ReturnState


@cache
def _tables() -> dict[str, str]:
    """The models' own table names, quoted, for the SQL below (never user input)."""
    models = {
        "customer": Customer,
        "statement": Statement,
        "application": InvoiceApplication,
        "invoice": Invoice,
        "ledger": LedgerEntry,
        "red_letter": RedLetterInvoice,
        "tax_request": TaxRequest,
        "return_request": ReturnRequest,
        "sms": SmsMessage,
    }
    return {name: connection.ops.quote_name(model._meta.db_table) for name, model in models.items()}


# The values the SQL compares with, as parameters (the choices' own values).
VALUES: dict[str, str] = {
    "issued": InvoiceState.ISSUED,
    "voided": InvoiceState.VOIDED,
    "reversed": InvoiceState.REVERSED,
    "app_issued": ApplicationState.ISSUED,
    "cancelled": ApplicationState.CANCELLED,
    "returned": LedgerKind.INVOICE_RETURNED,
    "done": TaxRequestState.DONE,
    "void": TaxOperation.VOID,
    "red_letter": TaxOperation.RED_LETTER,
    "digital": InvoiceMedium.DIGITAL,
    "provider": Issuer.PROVIDER,
    "confirmed": BuyerDecision.CONFIRMED,
    "completed": ReturnState.COMPLETED,
    "return_completed": SmsPurpose.RETURN_COMPLETED,
    "email_only": NotifyBy.EMAIL,  # told by email as they chose: no SMS expected
}


BALANCES = "balances agree with statements, applications and returns"
NEVER_NEGATIVE = "invoiceable amounts never negative"
RETURNED_CREDITS = "one returned credit per voided/reversed invoice"
TAX_OUTCOMES = "credits have recorded tax-system outcomes"
RED_LETTER = "red-letter invoices"
ISSUED_APPLICATIONS = "issued applications have invoices"
COMPLETED_RETURNS = "completed returns"
DIGITAL = "digital invoices"
RETURN_COPIES = "returns copy their invoices' code and number"

# The report's sections, in this order.
TITLES = [
    BALANCES,
    NEVER_NEGATIVE,
    RETURNED_CREDITS,
    TAX_OUTCOMES,
    RED_LETTER,
    ISSUED_APPLICATIONS,
    COMPLETED_RETURNS,
    DIGITAL,
    RETURN_COPIES,
]


def _rows(sql: str) -> Sequence[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql.format(**_tables()), {k: str(v) for k, v in VALUES.items()})
        return cursor.fetchall()


def check_ledger_balances() -> dict[str, list[str]]:
    """Each customer's ledger equals what its statements, applications (not the cancelled
    ones: their debit was credited back) and returns say, and (R10) its running invoiceable
    amount never dipped below zero. One ordered pass over the ledger gives both: the running
    balance's minimum and its last value, the balance."""
    rows = _rows(
        """
        WITH ledger AS (
            SELECT customer_id, SUM(amount) AS total, MIN(running) AS low FROM (
                SELECT customer_id, amount,
                       SUM(amount) OVER (PARTITION BY customer_id ORDER BY id
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                           AS running
                FROM {ledger}
            ) AS entries GROUP BY customer_id
        ), expected AS (
            SELECT c.id, c.name, COALESCE(l.total, 0.00) AS ledger, l.low,
                   COALESCE(s.total, 0.00) - COALESCE(a.total, 0.00) + COALESCE(r.total, 0.00)
                       AS expected
            FROM {customer} AS c
            LEFT JOIN ledger AS l ON l.customer_id = c.id
            LEFT JOIN (SELECT customer_id, SUM(amount) AS total FROM {statement}
                       WHERE settled_at IS NOT NULL GROUP BY customer_id) AS s
                ON s.customer_id = c.id
            LEFT JOIN (SELECT customer_id, SUM(amount) AS total FROM {application}
                       WHERE state <> %(cancelled)s
                       GROUP BY customer_id) AS a ON a.customer_id = c.id
            LEFT JOIN (SELECT customer_id, SUM(total) AS total FROM {invoice}
                       WHERE state IN (%(voided)s, %(reversed)s)
                       GROUP BY customer_id) AS r ON r.customer_id = c.id
        )
        SELECT id, name, ledger, expected, low FROM expected
        WHERE ledger <> expected OR low < 0 ORDER BY id
        """
    )
    return {
        BALANCES: [
            f"customer {pk} ({name}): ledger says {ledger}, statements/applications/returns "
            f"say {expected}"
            for pk, name, ledger, expected, _low in rows
            if ledger != expected
        ],
        NEVER_NEGATIVE: [
            f"customer {pk}: invoiceable amount went negative ({low})"
            for pk, _name, _ledger, _expected, low in rows
            if low is not None and low < 0
        ],
    }


def check_returned_credits() -> list[str]:
    """R6/R7: every voided or reversed invoice has exactly one returned credit, and only those."""
    problems = [
        f"invoice {code} {number} is {state} but has {n} returned credits"
        for code, number, state, n in _rows(
            """
            SELECT i.code, i.number, i.state, COUNT(l.id) FROM {invoice} AS i
            LEFT JOIN {ledger} AS l ON l.invoice_id = i.id AND l.kind = %(returned)s
            WHERE i.state IN (%(voided)s, %(reversed)s)
            GROUP BY i.id HAVING COUNT(l.id) <> 1 ORDER BY i.id
            """
        )
    ]
    # Returned credits are few: the partial unique index on them finds them without a scan.
    problems += [
        f"invoice {code} {number} is issued but has a returned credit"
        for code, number in _rows(
            """
            SELECT i.code, i.number FROM {ledger} AS l JOIN {invoice} AS i ON i.id = l.invoice_id
            WHERE l.kind = %(returned)s AND i.state = %(issued)s ORDER BY i.id
            """
        )
    ]
    problems += [
        f"ledger entry {pk}: credit of {amount} differs from invoice total {invoice_total}"
        for pk, amount, invoice_total in _rows(
            """
            SELECT l.id, l.amount, i.total FROM {ledger} AS l
            JOIN {invoice} AS i ON i.id = l.invoice_id
            WHERE l.kind = %(returned)s AND l.amount <> i.total ORDER BY l.id
            """
        )
    ]
    return problems


def check_credits_have_tax_outcomes() -> list[str]:
    """R6/R7: no credit without the tax system's recorded outcome, and no recorded outcome
    that disagrees with the invoice (a done void on a voided invoice, a done red-letter request
    on a reversed one with its red-letter invoice)."""
    problems = [
        f"ledger entry {pk}: invoice {code} {number} credited without a recorded tax outcome"
        for pk, code, number in _rows(
            """
            SELECT l.id, i.code, i.number FROM {ledger} AS l
            LEFT JOIN {invoice} AS i ON i.id = l.invoice_id
            WHERE l.kind = %(returned)s AND NOT EXISTS (
                SELECT 1 FROM {tax_request} AS t
                WHERE t.invoice_id = l.invoice_id AND t.state = %(done)s
            )
            ORDER BY l.id
            """
        )
    ]
    problems += [
        f"tax request {serial}: {operation} recorded but invoice {code} {number} is {state}"
        for serial, operation, code, number, state in _rows(
            """
            SELECT t.serial, t.operation, i.code, i.number, i.state FROM {tax_request} AS t
            JOIN {invoice} AS i ON i.id = t.invoice_id
            WHERE t.state = %(done)s
              AND NOT ((t.operation = %(void)s AND i.state = %(voided)s)
                       OR (t.operation = %(red_letter)s AND i.state = %(reversed)s))
            ORDER BY t.id
            """
        )
    ]
    return problems


def check_red_letter_invoices() -> list[str]:
    """Every reversed invoice has one current red-letter invoice printing its figures negated,
    and only reversed invoices have one (superseded rows are history)."""
    problems = [
        f"invoice {code} {number} is reversed without a red-letter invoice"
        for code, number in _rows(
            """
            SELECT i.code, i.number FROM {invoice} AS i
            WHERE i.state = %(reversed)s AND NOT EXISTS (
                SELECT 1 FROM {red_letter} AS r
                WHERE r.original_id = i.id AND r.superseded_at IS NULL
            )
            ORDER BY i.id
            """
        )
    ]
    problems += [
        f"invoice {code} {number}: red-letter amounts are not the original's negated"
        for code, number in _rows(
            """
            SELECT i.code, i.number FROM {red_letter} AS r JOIN {invoice} AS i
                ON i.id = r.original_id
            WHERE r.superseded_at IS NULL
              AND NOT (r.amount = -i.amount AND r.tax = -i.tax AND r.total = -i.total
                       AND r.tax_rate = i.tax_rate)
            ORDER BY r.id
            """
        )
    ]
    problems += [
        f"invoice {code} {number} has a red-letter invoice but is {state}"
        for code, number, state in _rows(
            """
            SELECT i.code, i.number, i.state FROM {red_letter} AS r JOIN {invoice} AS i
                ON i.id = r.original_id
            WHERE r.superseded_at IS NULL AND i.state <> %(reversed)s
            ORDER BY r.id
            """
        )
    ]
    return problems


def check_digital_invoices() -> list[str]:
    """数电票: each row that copies its invoice's medium agrees with it (a digital invoice is
    reversed by a digital red-letter invoice, through a digital request, in a digital return);
    a recorded digital reversal carries its 20-digit red-letter confirmation form, confirmed by
    the buyer when the buyer had to confirm it. Applications and invoice files: in
    ``check_applications_and_invoices``."""
    problems: list[str] = []
    for label, table in (("tax request", "{tax_request}"), ("return", "{return_request}")):
        problems += [
            f"{label} {pk} is {medium} but invoice {_name(code, number)} is {invoice_medium}"
            for pk, medium, code, number, invoice_medium in _rows(
                f"""
                SELECT x.id, x.medium, i.code, i.number, i.medium FROM {table} AS x
                JOIN {{invoice}} AS i ON i.id = x.invoice_id
                WHERE x.medium <> i.medium ORDER BY x.id
                """  # noqa: S608 (the table is one of the two above, not input)
            )
        ]
    problems += [
        f"red-letter invoice {_name(code, number)} is {medium} but its original "
        f"{_name(original_code, original_number)} is {original_medium}"
        for code, number, medium, original_code, original_number, original_medium in _rows(
            """
            SELECT r.code, r.number, r.medium, i.code, i.number, i.medium FROM {red_letter} AS r
            JOIN {invoice} AS i ON i.id = r.original_id
            WHERE r.medium <> i.medium ORDER BY r.id
            """
        )
    ]
    problems += [
        f"tax request {serial}: digital reversal recorded without its confirmation form"
        for (serial,) in _rows(
            """
            SELECT serial FROM {tax_request}
            WHERE medium = %(digital)s AND state = %(done)s AND red_letter_form_number = ''
            ORDER BY id
            """
        )
    ]
    problems += [
        f"tax request {serial}: the buyer had to confirm form {form} but its decision is "
        f"{decision or 'missing'}"
        for serial, form, decision in _rows(
            """
            SELECT serial, red_letter_form_number, buyer_decision FROM {tax_request}
            WHERE medium = %(digital)s AND state = %(done)s
              AND buyer_booked AND NOT buyer_entered_form AND buyer_decision <> %(confirmed)s
            ORDER BY id
            """
        )
    ]
    return problems


def check_return_copies() -> list[str]:
    """Each return's copy of its invoice's code and number (what the returns list searches)
    is its invoice's. PostgreSQL's foreign key on the three columns (``return_invoice_copy_fk``)
    refuses any other copy: this finds what went past it (a restore with the constraints off,
    another database)."""
    return [
        f"return {pk} names invoice {_name(copy_code, copy_number)} but its invoice is "
        f"{_name(code, number)}"
        for pk, copy_code, copy_number, code, number in _rows(
            """
            SELECT r.id, r.invoice_code, r.invoice_number, i.code, i.number
            FROM {return_request} AS r JOIN {invoice} AS i ON i.id = r.invoice_id
            WHERE r.invoice_code <> i.code OR r.invoice_number <> i.number ORDER BY r.id
            """
        )
    ]


def _name(code: str, number: str) -> str:
    """An invoice as people name it: code and number, or the digital number alone."""
    return f"{code} {number}" if code else number


def check_applications_and_invoices() -> dict[str, list[str]]:
    """One join of applications with their invoices: an issued application has its invoice;
    an invoice's medium is its application's; an issued digital invoice of the provider has
    its file (every provider invoice has an application: ``invoice_provider_has_application``,
    so none is missed by starting from the applications)."""
    rows = _rows(
        """
        SELECT a.id, a.medium, i.id IS NOT NULL, i.number, i.medium,
               i.medium = %(digital)s AND i.issuer = %(provider)s AND i.document = ''
        FROM {application} AS a LEFT JOIN {invoice} AS i ON i.application_id = a.id
        WHERE (i.id IS NULL AND a.state = %(app_issued)s)
           OR a.medium <> i.medium
           OR (i.medium = %(digital)s AND i.issuer = %(provider)s AND i.document = '')
        ORDER BY a.id
        """
    )
    return {
        ISSUED_APPLICATIONS: [
            f"application {pk} is issued but has no invoice"
            for pk, _medium, has_invoice, *_rest in rows
            if not has_invoice
        ],
        DIGITAL: [
            f"application {pk} is {app_medium} but its invoice {number} is {medium}"
            for pk, app_medium, has_invoice, number, medium, _no_file in rows
            if has_invoice and app_medium != medium
        ]
        + [
            f"digital invoice {number} has no file for the customer to download"
            for _pk, _app_medium, _has_invoice, number, _medium, no_file in rows
            if no_file
        ],
    }


def check_completed_returns() -> list[str]:
    """Every completed return matches its invoice and has exactly one success SMS (R8)."""
    problems = [
        f"return {pk} is completed ({outcome}) but its invoice is {state}"
        for pk, outcome, state in _rows(
            """
            SELECT r.id, r.outcome, i.state FROM {return_request} AS r
            JOIN {invoice} AS i ON i.id = r.invoice_id
            WHERE r.state = %(completed)s AND r.outcome <> i.state ORDER BY r.id
            """
        )
    ]
    problems += [
        f"return {pk} is completed with {n} success SMS instead of 1"
        for pk, n in _rows(
            """
            SELECT r.id, (SELECT COUNT(*) FROM {sms} AS m
                          WHERE m.related_return_id = r.id
                            AND m.purpose = %(return_completed)s) AS n
            FROM {return_request} AS r
            JOIN {invoice} AS i ON i.id = r.invoice_id
            JOIN {customer} AS c ON c.id = i.customer_id
            WHERE r.state = %(completed)s AND c.mobile > '' AND c.notify_by <> %(email_only)s
              AND (SELECT COUNT(*) FROM {sms} AS m
                   WHERE m.related_return_id = r.id AND m.purpose = %(return_completed)s) <> 1
            ORDER BY r.id
            """
        )
    ]
    return problems


def _under(title: str, check: Callable[[], list[str]]) -> Callable[[], dict[str, list[str]]]:
    def run() -> dict[str, list[str]]:
        return {title: check()}

    run.__name__ = check.__name__
    return run


# Independent, read-only passes; each reports under one or more of TITLES. The two passes over
# the big tables come first, so that run at once they start first.
CHECKS: list[Callable[[], dict[str, list[str]]]] = [
    check_ledger_balances,
    check_applications_and_invoices,
    _under(RETURNED_CREDITS, check_returned_credits),
    _under(TAX_OUTCOMES, check_credits_have_tax_outcomes),
    _under(RED_LETTER, check_red_letter_invoices),
    _under(COMPLETED_RETURNS, check_completed_returns),
    _under(DIGITAL, check_digital_invoices),
    _under(RETURN_COPIES, check_return_copies),
]
