"""Reads that pages, admin and commands share."""

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet, Sum

from core import sql
from invoices.models import CENT, ZERO, ApplicationState, Customer, Invoice, LedgerEntry


def invoiceable_amount(*, customer_id: int) -> Decimal:
    """The customer's invoiceable amount: the sum of its ledger, never a stored figure.

    Quantized to fen: SQLite (the ``make run`` default) sums decimals with trailing digits.
    """
    total = LedgerEntry.objects.filter(customer_id=customer_id).aggregate(total=Sum("amount"))
    return (total["total"] or ZERO).quantize(CENT)


@dataclass(frozen=True)
class CustomerHeader:
    customer: Customer
    invoiceable: Decimal  # ``invoiceable_amount``
    invoice_count: int  # all its invoices
    has_pending_applications: bool  # whether ``applications_pending_for_customer`` has any


def customer_page_header(*, user: User | AnonymousUser) -> CustomerHeader | None:
    """``customer_for_user`` with, in the same query, what Invoice Management shows above its
    rows: the invoiceable amount (``invoiceable_amount``'s sum, read off the ledger's index),
    the pager's count of all its invoices, and whether it has applications being issued (the
    page reads them only then).

    Plain, portable SQL: the ORM's compiling of its two subqueries cost more than the query
    (issue 16, P2)."""
    if not user.is_authenticated:
        return None
    with sql.prepared_cursor() as cursor:
        cursor.execute(_customer_page_header_sql(), [ApplicationState.PENDING, user.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    width = sql.width(Customer)
    invoiceable, invoice_count, has_pending = row[width:]
    return CustomerHeader(
        customer=sql.instance(Customer, row[:width]),
        # Quantized to fen: SQLite sums decimals as floats.
        invoiceable=Decimal(invoiceable or ZERO).quantize(CENT),
        invoice_count=int(invoice_count),
        has_pending_applications=bool(has_pending),
    )


@cache
def _customer_page_header_sql() -> str:
    return (
        f"SELECT {sql.columns(Customer, 'c')}, "  # noqa: S608 - the model's own columns
        "(SELECT SUM(l.amount) FROM invoices_ledgerentry AS l WHERE l.customer_id = c.id) "
        "AS invoiceable, "
        "(SELECT COUNT(*) FROM invoices_invoice AS i WHERE i.customer_id = c.id) AS invoice_count, "
        "EXISTS (SELECT 1 FROM invoices_invoiceapplication AS a "
        "WHERE a.customer_id = c.id AND a.state = %s) AS has_pending "
        "FROM invoices_customer AS c WHERE c.user_id = %s"
    )


def invoices_for_customer(*, customer: Customer) -> QuerySet[Invoice]:
    return Invoice.objects.filter(customer=customer).select_related("application")


def customer_for_user(*, user: User | AnonymousUser) -> Customer | None:
    """The customer profile of a logged-in user, or None for staff without one."""
    if not user.is_authenticated:
        return None
    return Customer.objects.filter(user=user).first()


def invoice_profiles_for_customer(*, customer: Customer) -> QuerySet:
    from invoices.models import InvoiceProfile

    return InvoiceProfile.objects.filter(customer=customer).order_by("name", "id")


def applications_pending_for_customer(*, customer: Customer, limit: int = 10) -> list:
    """Applications not yet issued as an invoice: the newest few, for Invoice Management (plain
    SQL, as ``customer_page_header``)."""
    from invoices.models import InvoiceApplication

    return list(
        InvoiceApplication.objects.raw(
            "SELECT * FROM invoices_invoiceapplication WHERE customer_id = %s AND state = %s "
            "ORDER BY created_at DESC, id DESC LIMIT %s",
            [customer.pk, ApplicationState.PENDING, limit],
        )
    )


# --- Back-office list search ------------------------------------------------------------------
# Each key through its own index (issue 16, P5): exact or by the beginning, a company name by
# its part (a trigram index in PostgreSQL). The keys of different tables are joined as a UNION
# of ids, never OR-ed across a join, which no index serves (a sequential scan of every row).


def customers_matching_term(term: str) -> QuerySet[Customer]:
    """Customers whose name holds ``term``, or whose taxpayer ID or mobile number begins
    with it."""
    return Customer.objects.filter(
        Q(name__icontains=term)
        | Q(taxpayer_id__startswith=term.upper())
        | Q(mobile__startswith=term)
    )


def invoice_ids_matching_term(term: str) -> QuerySet:
    """The ids (a subquery) of the invoices whose number begins with ``term`` or whose code is
    ``term``, and of the invoices of the customers ``customers_matching_term`` finds."""
    by_number = Invoice.objects.filter(Q(number__startswith=term) | Q(code=term))
    by_customer = Invoice.objects.filter(
        customer_id__in=customers_matching_term(term).order_by().values("pk")
    )
    return by_number.order_by().values("pk").union(by_customer.order_by().values("pk"))
