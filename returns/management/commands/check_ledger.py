from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections

from invoices.models import Customer, LedgerEntry
from returns.integrity import CHECKS, TITLES


class Command(BaseCommand):
    help = (
        "Check every customer's invoiceable amount against its ledger and the invariants of "
        "returns. Exit 1 with a report when anything disagrees."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--jobs",
            type=int,
            default=2,
            help="checks run at once, each on a connection of its own (default 2); 1 runs them "
            "one after the other. Inside a transaction they always run one after the other.",
        )

    def handle(self, *args, jobs: int, **options) -> None:
        found_by_title: dict[str, list[str]] = {title: [] for title in TITLES}
        for by_title in _run(jobs):
            for title, lines in by_title.items():
                found_by_title[title] += lines
        problems: list[str] = []
        for title, found in found_by_title.items():
            if found:
                problems.append(f"{title}: {len(found)} problem(s)")
                problems.extend(f"  - {line}" for line in found[:50])
                if len(found) > 50:
                    problems.append(f"  ... and {len(found) - 50} more")
        if problems:
            self.stderr.write("\n".join(problems))
            raise CommandError("check_ledger found problems", returncode=1)
        self.stdout.write(
            f"check_ledger: OK - {Customer.objects.count()} customers, "
            f"{LedgerEntry.objects.count()} ledger entries, {len(TITLES)} checks passed."
        )


def _run(jobs: int) -> list[dict[str, list[str]]]:
    """Each check's problems by title, in the order of CHECKS.

    The checks are independent read-only queries, each one consistent in itself (as when they
    ran one after the other), so they may run at once on separate connections: PostgreSQL then
    works on as many cores as there are jobs. A caller's open transaction (a test's) is seen
    only on its own connection, so then they run there, one after the other."""
    if jobs <= 1 or connection.in_atomic_block:
        return [check() for check in CHECKS]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="check_ledger") as pool:
        return list(pool.map(_on_own_connection, CHECKS))


def _on_own_connection(check: Callable[[], dict[str, list[str]]]) -> dict[str, list[str]]:
    try:
        return check()
    finally:
        connections.close_all()  # this thread's connections only (they are per thread)
