"""Reads that pages, admin and commands share."""

from decimal import Decimal

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet, Sum

from invoices.models import CENT, ZERO, Customer, Invoice, LedgerEntry


def invoiceable_amount(*, customer_id: int) -> Decimal:
    """The customer's invoiceable amount: the sum of its ledger, never a stored figure.

    Quantized to fen: SQLite (the ``make run`` default) sums decimals with trailing digits.
    """
    total = LedgerEntry.objects.filter(customer_id=customer_id).aggregate(total=Sum("amount"))
    return (total["total"] or ZERO).quantize(CENT)


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
    """Applications not yet issued as an invoice: the newest few, for Invoice Management."""
    from invoices.models import ApplicationState, InvoiceApplication

    return list(
        InvoiceApplication.objects.filter(
            customer=customer, state=ApplicationState.PENDING
        ).order_by("-created_at", "-id")[:limit]
    )
