"""Benchmarks: print figures, assert nothing. Run with `make bench` (PostgreSQL required).

Creates (or reuses) the database named by BENCH_DATABASE_URL, migrates it, seeds it with
`seed_bench`, then measures:
  - seeding speed,
  - `check_ledger` over the whole database,
  - the invoiceable amount (a SUM over the ledger) for one customer,
  - end-to-end return processing (submit → paper logged → request to the sandbox tax system →
    its void/red-letter recorded + credit + SMS row),
  - peak memory (RSS) of this process.
"""

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _ensure_database(url: str) -> None:
    import psycopg
    from environ import Env

    config = Env.db_url_config(url)
    with psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"] or "postgres",
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]])
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{config["NAME"]}"')


def _timed(label: str, func, *args, **kwargs):
    started = time.perf_counter()
    result = func(*args, **kwargs)
    print(f"{label:<55} {time.perf_counter() - started:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--invoices", type=int, default=50)
    parser.add_argument("--returns", type=int, default=200)
    args = parser.parse_args()

    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/invoice_returns_bench"
    )
    _ensure_database(url)
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="true",  # the development set-up (settings default to production)
        SMS_BACKEND="memory",
        CELERY_BROKER_URL="",
        LOG_LEVEL="WARNING",
        TAX_SYSTEM_BACKEND="sandbox",  # answers at once when eager: the whole round trip
    )
    import django

    django.setup()
    from io import StringIO

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from invoices.models import Customer, Invoice, InvoiceState, LedgerEntry
    from invoices.selectors import invoiceable_amount
    from returns.services import mail_receipt_log, return_request_submit

    call_command("migrate", verbosity=0)
    print(f"database: {connection.settings_dict['NAME']}")
    total = args.customers * args.invoices
    _timed(
        f"seed_bench {args.customers} customers x {args.invoices} invoices ({total})",
        call_command,
        "seed_bench",
        customers=args.customers,
        invoices=args.invoices,
        stdout=StringIO(),
    )
    print(
        f"rows now: {Invoice.objects.count()} invoices, {LedgerEntry.objects.count()} ledger "
        f"entries, {Customer.objects.count()} customers"
    )
    _timed("check_ledger (whole database)", call_command, "check_ledger", stdout=StringIO())

    customer = Customer.objects.order_by("-pk").first()
    samples = []
    for _ in range(50):
        started = time.perf_counter()
        invoiceable_amount(customer_id=customer.pk)
        samples.append(time.perf_counter() - started)
    print(f"{'invoiceable_amount (median of 50)':<55} {statistics.median(samples) * 1000:8.3f} ms")

    finance, _ = get_user_model().objects.get_or_create(username="bench-finance", is_staff=True)
    invoices = list(
        Invoice.objects.filter(state=InvoiceState.ISSUED, return_requests__isnull=True)
        .select_related("customer__user")
        .order_by("-pk")[: args.returns]
    )
    per_return = []
    queries = []
    for invoice in invoices:
        connection.queries_log.clear()  # DEBUG keeps at most 9000 queries; count per return
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            return_request_submit(
                invoice_id=invoice.pk,
                customer_id=invoice.customer_id,
                actor=invoice.customer.user,
                reason="bench",
                certified=False,
            )
            mail_receipt_log(
                invoice_code=invoice.code,
                invoice_number=invoice.number,
                actor=finance,
                invoice_form_present=True,
                deduction_form_present=True,
                undamaged=True,
            )
        per_return.append(time.perf_counter() - started)
        queries.append(len(captured))
    if per_return:
        print(
            f"{'return end to end (submit+paper+tax system+credit+SMS)':<55} "
            f"{statistics.median(per_return) * 1000:8.1f} ms median, "
            f"{sorted(per_return)[int(len(per_return) * 0.95) - 1] * 1000:.1f} ms p95, "
            f"{len(per_return) / sum(per_return):.0f} returns/s, {statistics.median(queries):.0f} "
            "queries each"
        )
    _timed("check_ledger after the returns", call_command, "check_ledger", stdout=StringIO())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'peak RSS of the benchmark process':<55} {peak_mb:8.1f} MB")


if __name__ == "__main__":
    main()
