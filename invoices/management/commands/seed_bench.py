"""Bulk, ledger-consistent data for benchmarks: N customers with M issued invoices each.

Rows are written with bulk_create in batches (no per-row services), but every figure is the
one the services would have written, so `check_ledger` passes afterwards.
"""

import time
import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from invoices.models import (
    ApplicationState,
    Customer,
    Invoice,
    InvoiceApplication,
    InvoiceType,
    Issuer,
    LedgerEntry,
    LedgerKind,
    Statement,
)
from invoices.tax import breakdown_from_total

BATCH = 2000
INVOICE_AMOUNT = Decimal("100.00")


class Command(BaseCommand):
    help = "Create N customers with M issued invoices each, fast, for the benchmarks in bench/."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--customers", type=int, default=100)
        parser.add_argument("--invoices", type=int, default=10, help="issued invoices per customer")
        parser.add_argument("--password", default="", help="password of the bench-* users")

    def handle(self, *args, customers: int, invoices: int, password: str, **options) -> None:
        started = time.perf_counter()
        run = uuid.uuid4().hex[:8]
        password_hash = make_password(password or None)
        now = timezone.now()
        with transaction.atomic():
            users = get_user_model().objects.bulk_create(
                [
                    get_user_model()(username=f"bench-{run}-{i}", password=password_hash)
                    for i in range(customers)
                ],
                batch_size=BATCH,
            )
            people = Customer.objects.bulk_create(
                [
                    Customer(
                        user=user,
                        name=f"Bench Customer {run}-{i}",
                        taxpayer_id="91110000600037341L",
                        mobile=f"+8613{i % 10**9:09d}",
                        language="zh-hans",
                    )
                    for i, user in enumerate(users)
                ],
                batch_size=BATCH,
            )
            funded = INVOICE_AMOUNT * invoices + Decimal("1000.00")
            statements = Statement.objects.bulk_create(
                [
                    Statement(
                        customer=c, period=now.date().replace(day=1), amount=funded, settled_at=now
                    )
                    for c in people
                ],
                batch_size=BATCH,
            )
            LedgerEntry.objects.bulk_create(
                [
                    LedgerEntry(
                        customer_id=s.customer_id,
                        kind=LedgerKind.STATEMENT_SETTLED,
                        amount=s.amount,
                        statement=s,
                    )
                    for s in statements
                ],
                batch_size=BATCH,
            )
            for customer in people:
                self._invoices(customer, invoices, now)
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"seed_bench: {customers} customers x {invoices} invoices "
            f"({customers * invoices} invoices) in {elapsed:.1f}s (run {run})"
        )

    def _invoices(self, customer: Customer, count: int, now) -> None:
        kinds = [InvoiceType.ORDINARY, InvoiceType.SPECIAL]
        applications = InvoiceApplication.objects.bulk_create(
            [
                InvoiceApplication(
                    customer=customer,
                    invoice_type=kinds[j % 2],
                    title=customer.name,
                    taxpayer_id=customer.taxpayer_id,
                    registered_address="1 Bench Road",
                    registered_phone="0571-00000000",
                    bank_name="Bench Bank",
                    bank_account="6222000000000000",
                    mailing_recipient="Bench",
                    mailing_phone="13800000000",
                    mailing_address="1 Bench Road",
                    amount=INVOICE_AMOUNT,
                    state=ApplicationState.ISSUED,
                )
                for j in range(count)
            ],
            batch_size=BATCH,
        )
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    customer=customer,
                    kind=LedgerKind.INVOICE_APPLIED,
                    amount=-a.amount,
                    application=a,
                )
                for a in applications
            ],
            batch_size=BATCH,
        )
        code = f"9{customer.pk:09d}"
        Invoice.objects.bulk_create(
            [
                Invoice(
                    customer=customer,
                    application=a,
                    invoice_type=a.invoice_type,
                    title=a.title,
                    **breakdown_from_total(a.amount).as_fields(),
                    code=code,
                    number=f"{j + 1:08d}",
                    issued_at=now,
                    issuer=Issuer.PROVIDER,
                    issuer_name="Bench Cloud",
                )
                for j, a in enumerate(applications)
            ],
            batch_size=BATCH,
        )
