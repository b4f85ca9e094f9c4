"""Invoice Management reads a constant number of queries whatever the customer's size (issue
16, P2): counted, never timed, at 10 and at 1,000 invoices."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from invoices.models import Customer

pytestmark = pytest.mark.django_db

# Session, user; the customer with its invoices counted for the pager, its invoiceable amount
# (an index-only SUM) and whether it has pending applications, in one query; the page's 20
# invoices with their holding return and how many returns each had. Then only when there are
# some: the pending applications; every return of those 20 (one query for the page).
INVOICE_MANAGEMENT_QUERIES = 4
INVOICE_MANAGEMENT_QUERIES_AT_MOST = 6


@pytest.mark.parametrize("invoices", [10, 1000])
def test_p2_invoice_management_reads_the_same_queries_at_10_and_1000_invoices(
    client, invoices, django_assert_num_queries
):
    call_command("seed_bench", customers=1, invoices=invoices, stdout=StringIO())
    customer = Customer.objects.get(name__startswith="Bench Customer")
    client.force_login(customer.user)

    with django_assert_num_queries(INVOICE_MANAGEMENT_QUERIES):
        response = client.get(reverse("billing:invoices"))

    assert response.status_code == 200
    assert len(response.context["invoices"]) == min(invoices, 20)
    assert response.context["invoices"][0].operation == "refund"


@pytest.mark.parametrize("invoices", [10, 1000])
def test_p2_pending_applications_and_earlier_returns_add_one_query_each_whatever_the_size(
    client, invoices, django_assert_num_queries
):
    from invoices.models import ApplicationState, Invoice, InvoiceApplication
    from returns.models import ReturnRequest, ReturnState
    from tests.factories import mailing_fields

    call_command("seed_bench", customers=1, invoices=invoices, stdout=StringIO())
    customer = Customer.objects.get(name__startswith="Bench Customer")
    InvoiceApplication.objects.create(
        customer=customer,
        invoice_type="ordinary",
        title=customer.name,
        taxpayer_id=customer.taxpayer_id,
        amount="10.00",
        state=ApplicationState.PENDING,
        **mailing_fields(),
    )
    for invoice in Invoice.objects.filter(customer=customer).order_by("-issued_at", "-id")[:3]:
        ReturnRequest.objects.create(
            invoice=invoice, state=ReturnState.CANCELLED, reason="x", submitted_by=customer.user
        )
    client.force_login(customer.user)

    with django_assert_num_queries(INVOICE_MANAGEMENT_QUERIES_AT_MOST):
        response = client.get(reverse("billing:invoices"))

    assert len(response.context["pending_applications"]) == 1
    assert sum(len(row.earlier) for row in response.context["invoices"]) == 3


def test_p2_a_filtered_page_counts_its_own_rows(client):
    call_command("seed_bench", customers=1, invoices=30, stdout=StringIO())
    customer = Customer.objects.get(name__startswith="Bench Customer")
    client.force_login(customer.user)

    response = client.get(reverse("billing:invoices"), {"status": "voided"})

    assert response.context["page"].paginator.count == 0
    assert response.context["invoices"] == []
    everything = client.get(reverse("billing:invoices"))
    assert everything.context["page"].paginator.count == 30
    assert everything.context["page"].paginator.num_pages == 2


def _plan(queryset, *, sorts: bool = True) -> str:
    """PostgreSQL's plan with sequential scans (and, ``sorts=False``, sorts) priced out: on
    tables this small the planner would otherwise scan and sort instead of using an index."""
    from django.db import connection

    switches = ["enable_seqscan"] + ([] if sorts else ["enable_sort", "enable_incremental_sort"])
    with connection.cursor() as cursor:
        for switch in switches:
            cursor.execute(f"SET {switch} = off")
    try:
        return queryset.explain()
    finally:
        with connection.cursor() as cursor:
            for switch in switches:
                cursor.execute(f"SET {switch} = on")


def test_p2_the_page_is_read_in_its_order_off_the_index_even_when_all_invoices_tie():
    from returns.selectors import invoices_for_management

    call_command("seed_bench", customers=20, invoices=30, tied=True, stdout=StringIO())
    customer = Customer.objects.filter(name__startswith="Bench Customer").first()

    plan = _plan(invoices_for_management(customer=customer), sorts=False)  # its first page

    assert "using invoice_customer_order_idx on invoices_invoice" in plan, plan
    # No sort of the tied invoices: an index without ``id`` would leave one to do.
    assert "Sort Key: invoices_invoice" not in plan, plan
