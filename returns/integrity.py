"""Whole-database invariant checks behind ``check_ledger``. Each check is one set-based query,
so it stays fast at hundreds of thousands of rows; each returns human-readable problems."""

from collections.abc import Callable

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from invoices.models import (
    ZERO,
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
    RedLetterInvoice,
    Statement,
    TaxOperation,
    TaxRequest,
    TaxRequestState,
)
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnRequest, ReturnState


def _sum(queryset, field: str = "amount"):
    return Coalesce(
        Subquery(queryset.values("customer_id").annotate(s=Sum(field)).values("s")[:1]),
        Value(ZERO),
    )


def check_balances_agree() -> list[str]:
    """Each customer's ledger equals what its statements, applications and returns say."""
    ledger = LedgerEntry.objects.filter(customer_id=OuterRef("pk"))
    settled = Statement.objects.filter(customer_id=OuterRef("pk"), settled_at__isnull=False)
    applied = InvoiceApplication.objects.filter(customer_id=OuterRef("pk"))
    returned = Invoice.objects.filter(
        customer_id=OuterRef("pk"), state__in=[InvoiceState.VOIDED, InvoiceState.REVERSED]
    )
    rows = (
        Customer.objects.annotate(
            ledger=_sum(ledger),
            expected=_sum(settled) - _sum(applied) + _sum(returned, "total"),
        )
        .exclude(ledger=F("expected"))
        .values_list("pk", "name", "ledger", "expected")
    )
    return [
        f"customer {pk} ({name}): ledger says {ledger}, statements/applications/returns say "
        f"{expected}"
        for pk, name, ledger, expected in rows
    ]


def check_never_negative() -> list[str]:
    """R10: no customer's running invoiceable amount ever dipped below zero."""
    table = LedgerEntry._meta.db_table
    sql = f"""
        SELECT customer_id, MIN(running) FROM (
            SELECT customer_id,
                   SUM(amount) OVER (PARTITION BY customer_id ORDER BY id) AS running
            FROM {table}
        ) AS balances GROUP BY customer_id HAVING MIN(running) < 0
    """  # noqa: S608 (the table name is the model's own, not input)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [
            f"customer {cid}: invoiceable amount went negative ({low})"
            for cid, low in cursor.fetchall()
        ]


def check_returned_credits() -> list[str]:
    """R6/R7: every voided or reversed invoice has exactly one returned credit, and only those."""
    credits = Count("ledger_entries", filter=Q(ledger_entries__kind=LedgerKind.INVOICE_RETURNED))
    returned = Invoice.objects.filter(state__in=[InvoiceState.VOIDED, InvoiceState.REVERSED])
    problems = [
        f"invoice {code} {number} is {state} but has {n} returned credits"
        for code, number, state, n in returned.annotate(n=credits)
        .exclude(n=1)
        .values_list("code", "number", "state", "n")
    ]
    problems += [
        f"invoice {code} {number} is issued but has a returned credit"
        for code, number in Invoice.objects.filter(state=InvoiceState.ISSUED)
        .annotate(n=credits)
        .filter(n__gt=0)
        .values_list("code", "number")
    ]
    problems += [
        f"ledger entry {pk}: credit of {amount} differs from invoice total {invoice_total}"
        for pk, amount, invoice_total in LedgerEntry.objects.filter(
            kind=LedgerKind.INVOICE_RETURNED
        )
        .exclude(amount=F("invoice__total"))
        .values_list("pk", "amount", "invoice__total")
    ]
    return problems


def check_credits_have_tax_outcomes() -> list[str]:
    """R6/R7: no credit without the tax system's recorded outcome, and no recorded outcome
    that disagrees with the invoice (a done void on a voided invoice, a done red-letter request
    on a reversed one with its red-letter invoice)."""
    recorded = TaxRequest.objects.filter(invoice=OuterRef("invoice"), state=TaxRequestState.DONE)
    problems = [
        f"ledger entry {pk}: invoice {code} {number} credited without a recorded tax outcome"
        for pk, code, number in LedgerEntry.objects.filter(kind=LedgerKind.INVOICE_RETURNED)
        .exclude(Exists(recorded))
        .values_list("pk", "invoice__code", "invoice__number")
    ]
    done = TaxRequest.objects.filter(state=TaxRequestState.DONE)
    problems += [
        f"tax request {serial}: {operation} recorded but invoice {code} {number} is {state}"
        for serial, operation, code, number, state in done.exclude(
            Q(operation=TaxOperation.VOID, invoice__state=InvoiceState.VOIDED)
            | Q(operation=TaxOperation.RED_LETTER, invoice__state=InvoiceState.REVERSED)
        ).values_list("serial", "operation", "invoice__code", "invoice__number", "invoice__state")
    ]
    return problems


def check_red_letter_invoices() -> list[str]:
    """Every reversed invoice has one current red-letter invoice printing its figures negated,
    and only reversed invoices have one (superseded rows are history)."""
    current = RedLetterInvoice.objects.filter(superseded_at__isnull=True)
    problems = [
        f"invoice {code} {number} is reversed without a red-letter invoice"
        for code, number in Invoice.objects.filter(state=InvoiceState.REVERSED)
        .exclude(Exists(current.filter(original=OuterRef("pk"))))
        .values_list("code", "number")
    ]
    problems += [
        f"invoice {code} {number}: red-letter amounts are not the original's negated"
        for code, number in current.exclude(
            amount=-F("original__amount"),
            tax=-F("original__tax"),
            total=-F("original__total"),
            tax_rate=F("original__tax_rate"),
        ).values_list("original__code", "original__number")
    ]
    problems += [
        f"invoice {code} {number} has a red-letter invoice but is {state}"
        for code, number, state in current.exclude(
            original__state=InvoiceState.REVERSED
        ).values_list("original__code", "original__number", "original__state")
    ]
    return problems


def check_digital_invoices() -> list[str]:
    """数电票: each row that copies its invoice's medium agrees with it (a digital invoice is
    reversed by a digital red-letter invoice, through a digital request, in a digital return);
    an issued digital invoice has its file; a recorded digital reversal carries its 20-digit
    red-letter confirmation form, confirmed by the buyer when the buyer had to confirm it."""
    problems = [
        f"application {pk} is {app_medium} but its invoice {number} is {medium}"
        for pk, app_medium, number, medium in InvoiceApplication.objects.filter(
            invoice__isnull=False
        )
        .exclude(medium=F("invoice__medium"))
        .values_list("pk", "medium", "invoice__number", "invoice__medium")
    ]
    for label, rows in (
        ("tax request", TaxRequest.objects.exclude(medium=F("invoice__medium"))),
        ("return", ReturnRequest.objects.exclude(medium=F("invoice__medium"))),
    ):
        problems += [
            f"{label} {pk} is {medium} but invoice {_name(code, number)} is {invoice_medium}"
            for pk, medium, code, number, invoice_medium in rows.values_list(
                "pk", "medium", "invoice__code", "invoice__number", "invoice__medium"
            )
        ]
    problems += [
        f"red-letter invoice {_name(code, number)} is {medium} but its original "
        f"{_name(original_code, original_number)} is {original_medium}"
        for code, number, medium, original_code, original_number, original_medium in (
            RedLetterInvoice.objects.exclude(medium=F("original__medium")).values_list(
                "code",
                "number",
                "medium",
                "original__code",
                "original__number",
                "original__medium",
            )
        )
    ]
    problems += [
        f"digital invoice {number} has no file for the customer to download"
        for number in Invoice.objects.filter(
            medium=InvoiceMedium.DIGITAL, issuer=Issuer.PROVIDER, document=""
        ).values_list("number", flat=True)
    ]
    done = TaxRequest.objects.filter(medium=InvoiceMedium.DIGITAL, state=TaxRequestState.DONE)
    problems += [
        f"tax request {serial}: digital reversal recorded without its confirmation form"
        for serial in done.filter(red_letter_form_number="").values_list("serial", flat=True)
    ]
    problems += [
        f"tax request {serial}: the buyer had to confirm form {form} but its decision is "
        f"{decision or 'missing'}"
        for serial, form, decision in done.filter(buyer_booked=True, buyer_entered_form=False)
        .exclude(buyer_decision=BuyerDecision.CONFIRMED)
        .values_list("serial", "red_letter_form_number", "buyer_decision")
    ]
    return problems


def _name(code: str, number: str) -> str:
    """An invoice as people name it: code and number, or the digital number alone."""
    return f"{code} {number}" if code else number


def check_applications_issued_once() -> list[str]:
    return [
        f"application {pk} is issued but has no invoice"
        for pk in InvoiceApplication.objects.filter(
            state=ApplicationState.ISSUED, invoice__isnull=True
        ).values_list("pk", flat=True)
    ]


def check_completed_returns() -> list[str]:
    """Every completed return matches its invoice and has exactly one success SMS (R8)."""
    completed = ReturnRequest.objects.filter(state=ReturnState.COMPLETED)
    problems = [
        f"return {pk} is completed ({outcome}) but its invoice is {state}"
        for pk, outcome, state in completed.exclude(outcome=F("invoice__state")).values_list(
            "pk", "outcome", "invoice__state"
        )
    ]
    sms_count = Coalesce(
        Subquery(
            SmsMessage.objects.filter(
                related_return_id=OuterRef("pk"), purpose=SmsPurpose.RETURN_COMPLETED
            )
            .values("related_return_id")
            .annotate(n=Count("pk"))
            .values("n")[:1]
        ),
        Value(0),
    )
    problems += [
        f"return {pk} is completed with {n} success SMS instead of 1"
        for pk, n in completed.filter(invoice__customer__mobile__gt="")
        .annotate(n=sms_count)
        .exclude(n=1)
        .values_list("pk", "n")
    ]
    return problems


CHECKS: list[tuple[str, Callable[[], list[str]]]] = [
    ("balances agree with statements, applications and returns", check_balances_agree),
    ("invoiceable amounts never negative", check_never_negative),
    ("one returned credit per voided/reversed invoice", check_returned_credits),
    ("credits have recorded tax-system outcomes", check_credits_have_tax_outcomes),
    ("red-letter invoices", check_red_letter_invoices),
    ("issued applications have invoices", check_applications_issued_once),
    ("completed returns", check_completed_returns),
    ("digital invoices", check_digital_invoices),
]
