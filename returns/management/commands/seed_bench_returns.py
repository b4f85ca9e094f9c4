"""Returns in bulk for the back-office benchmark (issue 16, P5): N returns on issued invoices
that ``seed_bench`` wrote, in one set-based statement, so 200,000 take seconds.

The invoices are taken from the highest customer ids down (the benchmarks of the portal take
customers from the lowest up), each invoice at most once, and only where no return holds it.
Six in ten returns wait for their paper (submitted), two were cancelled and two rejected with a
reason: states whose rows every database constraint accepts without paper, forms or a tax
request, and that move no ledger entry (``check_ledger`` still passes). A paper return has its
courier tracking number; each return was submitted a few seconds before the next newer one,
and has a reference dated that day (made in Python, as the app makes it, joined by row number).
"""

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from invoices.models import Customer, Invoice, InvoiceMedium, InvoiceState
from returns.models import BLOCKING_STATES, ReturnRequest, ReturnState
from returns.references import reference_new

SPACING = dt.timedelta(seconds=7)  # between two returns, newest first


def _references(count: int, now: dt.datetime) -> list[str]:
    """``count`` distinct references, the n-th dated as the n-th newest return, none of them
    one that a return already in the table holds (the bench's P1 made tens of thousands today:
    the same day's random part would meet one now and then)."""
    made: list[str] = []
    taken: set[str] = set(ReturnRequest.objects.values_list("reference", flat=True))
    for n in range(1, count + 1):
        reference = reference_new(at=now - n * SPACING)
        while reference in taken:
            reference = reference_new(at=now - n * SPACING)
        taken.add(reference)
        made.append(reference)
    return made


class Command(BaseCommand):
    help = "Add N returns to issued bench invoices, fast, for the back-office benchmark."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--returns", type=int, default=1000)

    def handle(self, *args, returns: int, **options) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("seed_bench_returns writes with PostgreSQL's SQL: use PostgreSQL.")
        started = time.perf_counter()
        now = timezone.now()
        params: dict[str, Any] = {
            "returns": returns,
            "now": now,
            "references": _references(returns, now),
            "issued": InvoiceState.ISSUED.value,
            "blocking": [str(state) for state in BLOCKING_STATES],
            "paper": InvoiceMedium.PAPER.value,
            "submitted": ReturnState.SUBMITTED.value,
            "cancelled": ReturnState.CANCELLED.value,
            "rejected": ReturnState.REJECTED.value,
        }
        tables = {
            "returns": connection.ops.quote_name(ReturnRequest._meta.db_table),
            "invoice": connection.ops.quote_name(Invoice._meta.db_table),
            "customer": connection.ops.quote_name(Customer._meta.db_table),
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(INSERT_RETURNS.format(**tables), params)
            created = cursor.rowcount
        with connection.cursor() as cursor:
            vacuum = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            cursor.execute(f"{vacuum} {tables['returns']}")
        elapsed = time.perf_counter() - started
        self.stdout.write(f"seed_bench_returns: {created} returns in {elapsed:.1f}s")


# Every value is a parameter; {names} are the models' own tables (never input).
INSERT_RETURNS = """
INSERT INTO {returns} (invoice_id, invoice_code, invoice_number, state, problem, reason,
    reason_code, medium, certified, buyer_booked, buyer_form_number, courier, tracking_number,
    outcome, rejection_reason, rejection_note, error, submitted_by_id, created_at, updated_at,
    reference)
SELECT i.id, i.code, i.number,
       CASE WHEN i.n %% 10 < 6 THEN %(submitted)s
            WHEN i.n %% 10 < 8 THEN %(cancelled)s ELSE %(rejected)s END,
       'other', 'bench', 'issuing_error', i.medium, false, false, '',
       CASE WHEN i.medium = %(paper)s THEN 'SF Express' ELSE '' END,
       CASE WHEN i.medium = %(paper)s THEN 'SF' || lpad(i.id::text, 12, '0') ELSE '' END,
       '',
       CASE WHEN i.n %% 10 >= 8 THEN 'Bench: the forms in the envelope were incomplete.'
            ELSE '' END,
       '', '', c.user_id,
       %(now)s::timestamptz - i.n * interval '7 seconds',
       %(now)s::timestamptz - i.n * interval '7 seconds',
       (%(references)s::text[])[i.n]
FROM (
    SELECT i.id, i.code, i.number, i.medium, i.customer_id,
           row_number() OVER (ORDER BY i.customer_id DESC, i.id) AS n
    FROM {invoice} AS i
    WHERE i.state = %(issued)s
      AND NOT EXISTS (SELECT 1 FROM {returns} AS r
                      WHERE r.invoice_id = i.id AND r.state = ANY(%(blocking)s))
    ORDER BY i.customer_id DESC, i.id
    LIMIT %(returns)s
) AS i
JOIN {customer} AS c ON c.id = i.customer_id
"""
