"""The back office's lists at a large provider's size (issue 16, P5): no full COUNT, the
search's keys each through its index, query counts pinned per list page. Counted, never timed
(``make bench`` times them at 200,000 returns)."""

from io import StringIO

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.forms import CheckboxInput
from django.utils.html import format_html
from django.utils.translation import gettext

from core.admin import LargeListPaginator
from invoices.selectors import customers_matching_term
from returns.backoffice_selectors import returns_matching
from returns.models import ReturnRequest, ReturnState
from returns.references import reference_parse
from tests.factories import CustomerFactory, issue_invoice
from tests.returns_helpers import submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "x")
    client.force_login(user)
    return client


@pytest.fixture
def bench_returns(db):
    """Two bench customers' invoices with 30 returns, written as ``make bench`` writes them."""
    call_command("seed_bench", customers=2, invoices=20, stdout=StringIO())
    call_command("seed_bench_returns", returns=30, stdout=StringIO())
    return ReturnRequest.objects.select_related("invoice__customer")


def test_seed_bench_returns_writes_returns_the_constraints_accept_and_the_ledger_still_checks(
    bench_returns,
):
    assert bench_returns.count() == 30
    states = set(bench_returns.values_list("state", flat=True))
    assert states == {ReturnState.SUBMITTED, ReturnState.CANCELLED, ReturnState.REJECTED}
    references = list(bench_returns.values_list("reference", flat=True))
    assert len(set(references)) == 30
    assert [reference_parse(ref) for ref in references] == references  # valid check characters
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "OK" in out.getvalue()


# Session, user; the page's rows (with invoice, customer, submitter, tax request), their
# count up to the exact limit, and the listed rejection reasons of the action bar.
RETURNS_LIST_QUERIES = 5


@pytest.mark.parametrize("query", ["", "number", "taxpayer_id"])
def test_p5_the_returns_list_reads_a_fixed_number_of_queries_listed_or_searched(
    superuser_client, bench_returns, django_assert_num_queries, query
):
    rr = bench_returns.order_by("pk").first()
    term = {
        "": "",
        "number": rr.invoice.number,
        "taxpayer_id": rr.invoice.customer.taxpayer_id,
    }[query]
    with django_assert_num_queries(RETURNS_LIST_QUERIES):
        response = superuser_client.get("/admin/returns/returnrequest/", {"q": term})
    assert response.status_code == 200
    assert rr in response.context["cl"].result_list


@pytest.mark.parametrize(
    ("url", "queries"),
    [
        # Session, user, the page's rows, their count, the date hierarchy's span and dates.
        ("/admin/invoices/invoice/", 6),
        # Session, user, the page's rows, their count.
        ("/admin/invoices/customer/", 4),
        # Session, user, the page's rows, their count, the date hierarchy's span and dates.
        ("/admin/invoices/ledgerentry/", 6),
    ],
)
def test_p5_the_other_large_lists_read_a_fixed_number_of_queries(
    superuser_client, bench_returns, django_assert_num_queries, url, queries
):
    with django_assert_num_queries(queries):
        response = superuser_client.get(url)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) > 0


def test_p5_the_returns_list_search_finds_each_key_and_every_word_must_match(db):
    company = CustomerFactory(
        name="Hangzhou Cloud Co.", mobile="+8613900139001", taxpayer_id="91330100123456789K"
    )
    other = CustomerFactory(name="Ningbo Other Co.")
    mine = submit(issue_invoice(company), tracking_number="SF1234567890")
    theirs = submit(issue_invoice(other))
    everything = ReturnRequest.objects.all()

    def found(query):
        return set(returns_matching(everything, query=query))

    assert found(mine.invoice.number) == {mine}
    assert found(f"{mine.invoice.code} {mine.invoice.number}") == {mine}  # code and number
    assert found("cloud") == {mine}  # part of the name, any case
    assert found(company.taxpayer_id.lower()) == {mine}  # typed in lower case
    assert found("+86139001") == {mine}
    assert found("SF123456") == {mine}
    assert found(f'"Ningbo Other" {theirs.invoice.number}') == {theirs}
    assert found(f"cloud {theirs.invoice.number}") == set()  # each word must match


def test_p5_the_returns_list_search_uses_the_indexes_never_a_sequential_scan(bench_returns):
    """Every arm of the search's UNION is an index scan (PostgreSQL's plan, with sequential
    scans priced out: on a table this small the planner would otherwise scan)."""
    rr = bench_returns.order_by("pk").first()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    try:
        for term in (rr.invoice.number, rr.invoice.customer.taxpayer_id, "SF00"):
            plan = returns_matching(ReturnRequest.objects.all(), query=term).explain()
            assert "Seq Scan" not in plan, plan
            assert "invoice_number_idx" in plan, plan
            assert "return_tracking_idx" in plan, plan
        # The customers' arm: which side drives the join is the planner's choice by the
        # tables' sizes (at 200,000 returns ``make bench`` prints it); the customers' own
        # lookup is by its index.
        plan = customers_matching_term(rr.invoice.customer.taxpayer_id).explain()
        assert "customer_taxpayer_id_idx" in plan, plan
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = on")


def test_p5_the_returns_list_is_read_in_its_order_off_its_index(bench_returns):
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_sort = off")
    try:
        plan = ReturnRequest.objects.order_by("-created_at", "-id")[:50].explain()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = on")
            cursor.execute("SET enable_sort = on")
    assert "return_order_idx" in plan, plan


def test_p5_the_paginator_counts_exactly_up_to_its_limit_then_takes_the_planners_estimate(
    bench_returns, monkeypatch, django_assert_num_queries
):
    returns = ReturnRequest.objects.order_by("-created_at", "-id")
    with django_assert_num_queries(1):  # one COUNT over a LIMIT
        assert LargeListPaginator(returns, 10).count == 30

    monkeypatch.setattr(LargeListPaginator, "exact_limit", 5)
    with django_assert_num_queries(2):  # the COUNT stops at 6 rows; the plan's estimate
        estimated = LargeListPaginator(returns, 10).count
    assert estimated >= 6  # never fewer than it counted; the rest is the planner's figure


def test_the_action_checkbox_is_the_html_django_writes(bench_returns, settings):
    rr = bench_returns.first()
    model_admin = admin.site._registry[ReturnRequest]
    django_writes = CheckboxInput(
        {
            "class": "action-select",
            "aria-label": format_html(gettext("Select this object for an action - {}"), str(rr)),
        },
        lambda value: False,
    ).render(helpers.ACTION_CHECKBOX_NAME, str(rr.pk))
    assert model_admin.action_checkbox(rr) == django_writes
    assert model_admin.action_checkbox.short_description == (
        '<input type="checkbox" id="action-toggle">'
    )
