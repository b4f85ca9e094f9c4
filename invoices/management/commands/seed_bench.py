"""Bulk, ledger-consistent data for benchmarks: N customers with M issued invoices each.

Every row is written by set-based SQL inside PostgreSQL (``INSERT … SELECT`` over
``generate_series``): no Python object per row, so a million ledger entries take seconds, not
minutes. The figures are the ones the services would have written, so every database
constraint holds and ``check_ledger`` passes afterwards:

- a user and a customer each, one settled statement funding all its invoices (+ 1000.00),
  and its ledger credit;
- per invoice an issued application, its ledger debit and the invoice. Every third invoice is
  digital (数电票: no code, a 20-digit number, the file the customer downloads, no mailing
  address); the others are paper (10-digit code + 8-digit number). Types alternate between
  ordinary and special.

The tables are VACUUMed and ANALYZEd afterwards: the planner must not plan the next query on the
statistics of the empty tables it saw before the load.
"""

import time
import uuid
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from stdnum.cn import uscc

from invoices.models import (
    ApplicationState,
    Customer,
    Invoice,
    InvoiceApplication,
    InvoiceMedium,
    InvoiceState,
    InvoiceType,
    Issuer,
    LedgerEntry,
    LedgerKind,
    Statement,
)
from invoices.tax import breakdown_from_total

INVOICE_AMOUNT = Decimal("100.00")
# The one file every seeded digital invoice points at (a real PDF, so downloads work).
DIGITAL_DOCUMENT = "invoices/bench/digital-invoice.pdf"
DIGITAL_DOCUMENT_BYTES = b"%PDF-1.4\n% a digital invoice seeded for benchmarks\n%%EOF\n"


class Command(BaseCommand):
    help = "Create N customers with M issued invoices each, fast, for the benchmarks in bench/."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--customers", type=int, default=100)
        parser.add_argument("--invoices", type=int, default=10, help="issued invoices per customer")
        parser.add_argument("--password", default="", help="password of the bench-* users")
        parser.add_argument(
            "--tied",
            action="store_true",
            help="issue each customer's invoices at one instant (a batch: the order's ties)",
        )

    def handle(
        self, *args, customers: int, invoices: int, password: str, tied: bool, **options
    ) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("seed_bench writes with PostgreSQL's set-based SQL: use PostgreSQL.")
        started = time.perf_counter()
        run = uuid.uuid4().hex[:8]
        storage = Invoice._meta.get_field("document").storage  # where the app reads it
        if not storage.exists(DIGITAL_DOCUMENT):
            storage.save(DIGITAL_DOCUMENT, ContentFile(DIGITAL_DOCUMENT_BYTES))
        params = _parameters(run, customers, invoices, password, tied)
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in STATEMENTS:
                cursor.execute(statement.format(**_tables()), params)
        with connection.cursor() as cursor:
            for model in (
                get_user_model(),
                Customer,
                Statement,
                InvoiceApplication,
                Invoice,
                LedgerEntry,
            ):
                # VACUUM too: index-only scans (the invoiceable amount's SUM) need the
                # visibility map that autovacuum would otherwise set some time later. Not
                # possible inside a caller's transaction (a test's): ANALYZE alone there.
                vacuum = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
                cursor.execute(f'{vacuum} "{model._meta.db_table}"')
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"seed_bench: {customers} customers x {invoices} invoices "
            f"({customers * invoices} invoices, {customers * (invoices + 1)} ledger entries) "
            f"in {elapsed:.1f}s (run {run})"
        )


def _parameters(
    run: str, customers: int, invoices: int, password: str, tied: bool = False
) -> dict[str, Any]:
    now = timezone.now()
    figures = breakdown_from_total(INVOICE_AMOUNT)
    return {
        "run": run,
        "prefix": f"bench-{run}-",
        "customers": customers,
        "invoices": invoices,
        "password": make_password(password or None),
        # A unified social credit code of its own for each customer, check character included
        # (back-office search by taxpayer ID finds one customer, as it would in production).
        "taxpayer_ids": [_taxpayer_id(i) for i in range(customers)],
        "now": now,
        "period": now.date().replace(day=1),
        "funded": INVOICE_AMOUNT * invoices + Decimal("1000.00"),
        "amount": figures.amount,
        "tax_rate": figures.tax_rate,
        "tax": figures.tax,
        "total": figures.total,
        "paper": InvoiceMedium.PAPER.value,
        "digital": InvoiceMedium.DIGITAL.value,
        "ordinary": InvoiceType.ORDINARY.value,
        "special": InvoiceType.SPECIAL.value,
        "app_issued": ApplicationState.ISSUED.value,
        "invoice_issued": InvoiceState.ISSUED.value,
        "provider": Issuer.PROVIDER.value,
        "settled": LedgerKind.STATEMENT_SETTLED.value,
        "applied": LedgerKind.INVOICE_APPLIED.value,
        "document": DIGITAL_DOCUMENT,
        "minute": 0 if tied else 1,  # minutes between two invoices of a customer
    }


def _taxpayer_id(i: int) -> str:
    """A valid 18-character unified social credit code, the ``i``-th of the benchmark's."""
    head = f"91110000{i:09d}"
    return head + uscc.calc_check_digit(head)


def _tables() -> dict[str, str]:
    """The models' own table names (never input), quoted, for STATEMENTS."""
    models: dict[str, type[Model]] = {
        "user": get_user_model(),
        "customer": Customer,
        "statement": Statement,
        "application": InvoiceApplication,
        "invoice": Invoice,
        "ledger": LedgerEntry,
    }
    return {name: connection.ops.quote_name(model._meta.db_table) for name, model in models.items()}


# Every value is a parameter; {names} are the tables of _tables().
STATEMENTS = [
    """
    INSERT INTO {user} (password, is_superuser, username, first_name, last_name, email,
                        is_staff, is_active, date_joined)
    SELECT %(password)s, false, %(prefix)s || i, '', '', '', false, true, %(now)s
    FROM generate_series(0, %(customers)s - 1) AS i
    """,
    """
    INSERT INTO {customer} (user_id, name, kind, taxpayer_id, mobile, language, created_at)
    SELECT u.id, 'Bench Customer ' || %(run)s || '-' || s.i, 'enterprise',
           (%(taxpayer_ids)s::text[])[s.i + 1],
           '+8613' || lpad((s.i %% 1000000000)::text, 9, '0'),
           'zh-hans', %(now)s
    FROM {user} AS u
    CROSS JOIN LATERAL (SELECT substr(u.username, length(%(prefix)s) + 1)::int AS i) AS s
    WHERE u.username LIKE %(prefix)s || '%%'
    """,
    # The run's customers, and one row per invoice with the ids it will take, drawn from
    # the tables' own sequences so that concurrent writers never collide with them.
    """
    CREATE TEMPORARY TABLE seed_customer ON COMMIT DROP AS
    SELECT c.id AS customer_id, c.name, c.taxpayer_id
    FROM {customer} AS c JOIN {user} AS u ON u.id = c.user_id
    WHERE u.username LIKE %(prefix)s || '%%'
    """,
    """
    INSERT INTO {statement} (customer_id, period, amount, settled_at, created_at)
    SELECT customer_id, %(period)s, %(funded)s, %(now)s, %(now)s FROM seed_customer
    """,
    """
    INSERT INTO {ledger} (customer_id, kind, amount, statement_id, created_at)
    SELECT s.customer_id, %(settled)s, s.amount, s.id, %(now)s
    FROM {statement} AS s JOIN seed_customer AS c USING (customer_id)
    """,
    """
    CREATE TEMPORARY TABLE seed_invoice ON COMMIT DROP AS
    SELECT c.customer_id, c.name, c.taxpayer_id, j,
           CASE WHEN j %% 3 = 2 THEN %(digital)s ELSE %(paper)s END AS medium,
           CASE WHEN j %% 2 = 0 THEN %(ordinary)s ELSE %(special)s END AS invoice_type,
           nextval(pg_get_serial_sequence('{application}', 'id')) AS application_id,
           %(now)s::timestamptz - (%(invoices)s - j) * %(minute)s * interval '1 minute'
               AS issued_at
    FROM seed_customer AS c CROSS JOIN generate_series(0, %(invoices)s - 1) AS j
    """,
    """
    INSERT INTO {application} (id, customer_id, invoice_type, medium, title, taxpayer_id,
        registered_address, registered_phone, bank_name, bank_account, email,
        mailing_recipient, mailing_phone, mailing_address, mailing_postal_code, amount,
        state, created_at)
    SELECT application_id, customer_id, invoice_type, medium, name, taxpayer_id,
           '1 Bench Road', '0571-00000000', 'Bench Bank', '6222000000000000',
           CASE WHEN medium = %(digital)s THEN 'bench@example.com' ELSE '' END,
           CASE WHEN medium = %(paper)s THEN 'Bench' ELSE '' END,
           CASE WHEN medium = %(paper)s THEN '13800000000' ELSE '' END,
           CASE WHEN medium = %(paper)s THEN '1 Bench Road' ELSE '' END,
           '', %(total)s, %(app_issued)s, issued_at - interval '1 day'
    FROM seed_invoice
    """,
    """
    INSERT INTO {ledger} (customer_id, kind, amount, application_id, created_at)
    SELECT customer_id, %(applied)s, -%(total)s, application_id, issued_at - interval '1 day'
    FROM seed_invoice ORDER BY customer_id, j
    """,
    """
    INSERT INTO {invoice} (customer_id, application_id, invoice_type, medium, title, amount,
        tax_rate, tax, total, code, number, document, emailed_at, issued_at, issuer,
        issuer_name, state, courier, tracking_number)
    SELECT customer_id, application_id, invoice_type, medium, name, %(amount)s,
           %(tax_rate)s, %(tax)s, %(total)s,
           CASE WHEN medium = %(paper)s THEN '9' || lpad(customer_id::text, 9, '0')
                ELSE '' END,
           CASE WHEN medium = %(paper)s THEN lpad((j + 1)::text, 8, '0')
                ELSE '26' || lpad(customer_id::text, 10, '0') || lpad(j::text, 8, '0') END,
           CASE WHEN medium = %(digital)s THEN %(document)s ELSE '' END,
           CASE WHEN medium = %(digital)s THEN issued_at END,
           issued_at, %(provider)s, 'Bench Cloud', %(invoice_issued)s, '', ''
    FROM seed_invoice ORDER BY customer_id, j
    """,
    # Dropped at commit anyway; dropped here too for a caller's enclosing transaction.
    "DROP TABLE seed_invoice, seed_customer",
]
