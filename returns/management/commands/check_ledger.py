from django.core.management.base import BaseCommand, CommandError

from invoices.models import Customer, LedgerEntry
from returns.integrity import CHECKS


class Command(BaseCommand):
    help = (
        "Check every customer's invoiceable amount against its ledger and the invariants of "
        "returns. Exit 1 with a report when anything disagrees."
    )

    def handle(self, *args, **options) -> None:
        problems: list[str] = []
        for title, check in CHECKS:
            found = check()
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
            f"{LedgerEntry.objects.count()} ledger entries, {len(CHECKS)} checks passed."
        )
