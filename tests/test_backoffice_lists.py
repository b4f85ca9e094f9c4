"""The back office's lists at a large provider's size (issue 16, P5): no full COUNT, the
search's keys each through its index, query counts pinned per list page. Counted, never timed
(``make bench`` times them at 200,000 returns)."""

import importlib
from io import StringIO

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.forms import CheckboxInput
from django.utils.html import format_html
from django.utils.translation import gettext

from core.admin import LargeListAdmin, LargeListPaginator
from invoices.models import Invoice
from invoices.selectors import customers_matching_term
from returns.backoffice_selectors import returns_matching
from returns.models import ReturnRequest, ReturnState
from returns.references import reference_parse
from tests.factories import CustomerFactory, issue_digital_invoice, issue_invoice
from tests.returns_helpers import log_paper, png_bytes, submit

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


# Session, user; the page's rows (with invoice and customer), their count up to the exact
# limit (searched: the matches' keys, read once, which give the count and the page's keys),
# and the listed rejection reasons of the action bar.
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
    # Searched, the page's keys and the count come from one read of the matches.
    assert response.context["cl"].paginator.keys_once is bool(term)


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
    assert mine in found(mine.invoice.number[:5])  # the number's beginning
    assert found(mine.invoice.code) == {mine, theirs}  # the code alone, exactly (both share it)
    assert found(f"{mine.invoice.code} {mine.invoice.number}") == {mine}  # code and number
    assert found("cloud") == {mine}  # part of the name, any case
    assert found(company.taxpayer_id.lower()) == {mine}  # typed in lower case
    assert found("+86139001") == {mine}
    assert found("SF123456") == {mine}
    assert found(f'"Ningbo Other" {theirs.invoice.number}') == {theirs}
    assert found(f"cloud {theirs.invoice.number}") == set()  # each word must match


def test_p5_the_returns_list_search_uses_the_indexes_never_a_sequential_scan(bench_returns):
    """Every key of the search is an index: all the matches (what the pager counts) are a
    bitmap of the four indexes, the page in its order is read off the list's index (or that
    bitmap, sorted); never a sequential scan (PostgreSQL's plans, with sequential scans priced
    out: on a table this small the planner would otherwise scan)."""
    rr = bench_returns.order_by("pk").first()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    try:
        for term in (rr.invoice.number, rr.invoice.customer.taxpayer_id, "SF00"):
            found = returns_matching(ReturnRequest.objects.all(), query=term)
            plan = found.explain()
            assert "Seq Scan" not in plan, plan
            plan = found.order_by().explain()
            assert "Seq Scan" not in plan, plan
            assert "return_invoice_number_idx" in plan, plan
            assert "return_invoice_code_idx" in plan, plan
            assert "return_tracking_idx" in plan, plan
            assert "returns_returnrequest_invoice_id" in plan, plan  # the customers' invoices
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


def test_p5_the_paginator_counts_exactly_up_to_its_limit_and_no_further(
    bench_returns, monkeypatch, django_assert_num_queries
):
    returns = ReturnRequest.objects.order_by("-created_at", "-id")
    with django_assert_num_queries(1):  # one COUNT over a LIMIT
        within = LargeListPaginator(returns, 10)
        assert (within.count, within.count_is_capped, within.num_pages) == (30, False, 3)

    monkeypatch.setattr(LargeListPaginator, "exact_limit", 5)
    with django_assert_num_queries(1):  # the COUNT stops at 6 rows; nothing is estimated
        past = LargeListPaginator(returns, 2)
        assert (past.count, past.count_is_capped, past.num_pages) == (5, True, 3)
    assert [rr.pk for rr in past.page(3)] == [rr.pk for rr in returns[4:5]]

    monkeypatch.setattr(LargeListPaginator, "exact_limit", 30)
    exactly = LargeListPaginator(returns, 10)  # as many rows as the limit: all counted
    assert (exactly.count, exactly.count_is_capped) == (30, False)


def _paginator_line(page: str) -> str:
    start = page.index('<p class="paginator">')
    return " ".join(page[start : page.index("</p>", start)].split())


@pytest.mark.parametrize(
    ("language", "says", "search_says"),
    [
        (
            "en",
            "More than 5 return requests: the first 5 are listed. "
            "Search or filter to narrow them down.",
            "more than 5 results",
        ),
        ("zh-hans", "退票申请超过 5 条，只列出前 5 条。请用搜索或筛选缩小范围。", "超过 5 个结果"),
    ],
)
def test_p5_a_list_past_its_limit_says_more_than_the_limit_and_pages_through_that_many(
    superuser_client, bench_returns, monkeypatch, language, says, search_says
):
    # The list never shows a figure it did not count: past the limit it says so, in words,
    # and its pages hold the first rows up to the limit in the order chosen.
    monkeypatch.setattr(LargeListPaginator, "exact_limit", 5)
    monkeypatch.setattr(admin.site._registry[ReturnRequest], "list_per_page", 2)
    headers = {"HTTP_ACCEPT_LANGUAGE": language}

    response = superuser_client.get("/admin/returns/returnrequest/", **headers)
    page = response.content.decode()
    line = _paginator_line(page)
    assert says in line, line
    assert "?p=3" in line
    assert "?p=4" not in line
    assert "30" not in line
    assert 'class="question' not in page  # no "Select all 30" across pages it did not count
    last = superuser_client.get("/admin/returns/returnrequest/", {"p": 3}, **headers)
    assert [rr.pk for rr in last.context["cl"].result_list] == [
        rr.pk for rr in bench_returns.order_by("-created_at", "-id")[4:5]
    ]

    taxpayer_id = bench_returns.first().invoice.customer.taxpayer_id  # one of two customers'
    assert bench_returns.filter(invoice__customer__taxpayer_id=taxpayer_id).count() > 5
    searched = superuser_client.get(
        "/admin/returns/returnrequest/", {"q": taxpayer_id}, **headers
    ).content.decode()
    assert search_says in searched


def test_p5_a_list_within_its_limit_counts_and_selects_as_django_does(
    superuser_client, bench_returns, monkeypatch
):
    monkeypatch.setattr(admin.site._registry[ReturnRequest], "list_per_page", 10)
    page = superuser_client.get("/admin/returns/returnrequest/").content.decode()
    line = _paginator_line(page)
    assert "30 return requests" in line
    assert "More than" not in line
    assert "Select all 30 return requests" in page


def _reject_all_submitted(client, submitted) -> list[str]:
    """Reject "all" of the submitted returns' list (select_across), as the action bar posts it
    after "Select all"; the messages shown after."""
    response = client.post(
        f"/admin/returns/returnrequest/?state__exact={ReturnState.SUBMITTED}",
        {
            "action": "reject",
            "select_across": "1",
            "index": "0",
            "_selected_action": [rr.pk for rr in submitted[:2]],
            "reason": "Paper never arrived",
        },
        follow=True,
    )
    return [str(m) for m in response.context["messages"]]


def test_p5_acting_on_all_of_a_list_past_its_limit_is_refused_and_changes_nothing(
    superuser_client, bench_returns, monkeypatch
):
    # "All" of a list past its limit is more rows than anyone counted or saw: finance narrows
    # the list (or selects the rows on the page) first.
    monkeypatch.setattr(LargeListPaginator, "exact_limit", 5)
    submitted = bench_returns.filter(state=ReturnState.SUBMITTED)
    before = submitted.count()
    assert before > 5
    assert _reject_all_submitted(superuser_client, submitted) == [
        "This list holds more than 5 return requests: narrow it with the search or the "
        "filters before acting on all of it, or select rows on the page."
    ]
    assert submitted.count() == before

    # Counted to its end, all of the list is acted on: here, the submitted returns.
    monkeypatch.setattr(LargeListPaginator, "exact_limit", 10_000)
    assert f"{before} returns rejected." in _reject_all_submitted(superuser_client, submitted)
    assert submitted.count() == 0


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


@pytest.fixture
def varied_returns(
    bench_returns,
    invoice,
    special_invoice,
    digital,
    finance_user,
    django_capture_on_commit_callbacks,
):
    """The bench's returns (paper and digital, submitted, cancelled, rejected) with a completed
    one (an outcome), a certified special one, and a customer whose name holds HTML."""
    with django_capture_on_commit_callbacks(execute=True):
        submit(invoice)
        log_paper(invoice, finance_user)  # complete: processed and voided at once (sandbox)
    certified = submit(
        special_invoice,
        certified=True,
        red_letter_form=SimpleUploadedFile("scan.png", png_bytes(), content_type="image/png"),
        red_letter_form_number="4403000100000001",
    )
    submit(digital, buyer_booked=False)
    special_invoice.customer.__class__.objects.filter(pk=special_invoice.customer_id).update(
        name='<b>Tom & "Jerry"</b> \'s Co.'
    )
    assert ReturnRequest.objects.filter(outcome="").exists()
    assert ReturnRequest.objects.exclude(outcome="").exists()
    assert ReturnRequest.objects.get(pk=certified.pk).certified
    return ReturnRequest.objects.all()


def _results_table(response) -> str:
    page = response.content.decode()
    assert response.status_code == 200
    start = page.index('<div class="results">')
    return page[start : page.index("</table>", start)]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize(
    "query",
    ["", "?q=0000", "?state__exact=submitted&o=-5.2", "?medium__exact=digital", "?o=6"],
)
@pytest.mark.parametrize("who", ["superuser", "reviewer"])
def test_p5_the_returns_lists_rows_are_the_html_django_writes(
    client, varied_returns, monkeypatch, language, query, who
):
    """The returns list writes its rows itself (``ReturnRequestAdmin.list_rows``): the page is
    the one Django's own template and ``items_for_result`` write, with actions (a checkbox a
    row) or without, searched, filtered and sorted, in both languages."""
    from returns.admin import ReturnRequestAdmin
    from returns.roles import ADMIN_REVIEWERS
    from tests.factories import staff_in_role

    if who == "superuser":
        user = get_user_model().objects.create_superuser("boss", "boss@example.com", "x")
    else:
        user = staff_in_role(ADMIN_REVIEWERS, username="rev")
    client.force_login(user)
    url = f"/admin/returns/returnrequest/{query}"
    headers = {"HTTP_ACCEPT_LANGUAGE": language}
    written = client.get(url, **headers)
    rows = written.context["cl"].result_list
    assert len(rows) > 1
    with monkeypatch.context() as django:
        django.setattr(ReturnRequestAdmin, "list_rows", lambda self, cl: None)
        django.setattr(ReturnRequestAdmin, "change_list_template", "admin/export_change_list.html")
        by_django = client.get(url, **headers)
    assert _results_table(written) == _results_table(by_django)
    assert ("action-select" in _results_table(written)) is (who == "superuser")
    assert language != "zh-hans" or "已提交" in _results_table(written)


# --- The return's copy of its invoice's code and number (what the search reads) -------------


def _past_the_constraints(sql: str, params: list) -> None:
    """Write as a bad restore would: with the table's triggers, foreign keys included, off."""
    table = ReturnRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no check left pending on the table
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        cursor.execute(sql.format(table=table), params)
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def test_p5_a_return_copies_its_invoices_code_and_number_when_it_is_made(customer):
    rr = submit(issue_invoice(customer))
    rr.refresh_from_db()
    assert (rr.invoice_code, rr.invoice_number) == (rr.invoice.code, rr.invoice.number)
    other = issue_invoice(customer)
    made = ReturnRequest.objects.create(
        invoice=other, state=ReturnState.CANCELLED, reason="x", submitted_by=customer.user
    )
    assert (made.invoice_code, made.invoice_number) == (other.code, other.number)


def test_p5_the_database_refuses_a_copy_that_is_not_the_invoices_and_accepts_its_own(customer):
    rr = submit(issue_invoice(customer))
    other = issue_invoice(customer)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.filter(pk=rr.pk).update(invoice_number=other.number)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.create(
            invoice=other,
            invoice_code=rr.invoice.code,
            invoice_number=rr.invoice.number,
            state=ReturnState.CANCELLED,
            reason="x",
            submitted_by=customer.user,
        )
    ReturnRequest.objects.filter(pk=rr.pk).update(invoice_number=rr.invoice.number)
    assert ReturnRequest.objects.create(
        invoice=other,
        invoice_code=other.code,
        invoice_number=other.number,
        state=ReturnState.CANCELLED,
        reason="x",
        submitted_by=customer.user,
    ).pk


def test_p5_a_corrected_invoice_number_carries_over_to_its_returns(customer):
    rr = submit(issue_invoice(customer))
    Invoice.objects.filter(pk=rr.invoice_id).update(number="87654321")
    rr.refresh_from_db()
    assert rr.invoice_number == "87654321"
    assert set(returns_matching(ReturnRequest.objects.all(), query="8765")) == {rr}


def test_p5_check_ledger_finds_a_return_whose_copy_is_not_its_invoices(customer):
    rr = submit(issue_invoice(customer))
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "OK" in out.getvalue()
    _past_the_constraints("UPDATE {table} SET invoice_number = '11112222' WHERE id = %s", [rr.pk])
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_ledger", stdout=StringIO(), stderr=err)
    assert (
        f"return {rr.pk} names invoice {rr.invoice.code} 11112222 but its invoice is "
        f"{rr.invoice.code} {rr.invoice.number}"
    ) in err.getvalue()


def test_p5_the_migration_fills_in_the_copies_of_the_returns_made_before_it(customer):
    migration = importlib.import_module("returns.migrations.0015_return_invoice_copy")
    paper = submit(issue_invoice(customer))
    digital = submit(issue_digital_invoice(customer), buyer_booked=False)
    _past_the_constraints("UPDATE {table} SET invoice_code = '', invoice_number = ''", [])
    with connection.schema_editor() as editor:
        migration.backfill(apps, editor)
    for rr in (paper, digital):
        rr.refresh_from_db()
        assert (rr.invoice_code, rr.invoice_number) == (rr.invoice.code, rr.invoice.number)


def test_p5_keys_first_pages_hold_the_rows_djangos_paginator_gives_in_one_query_each(
    bench_returns, django_assert_num_queries
):
    from django.core.paginator import Paginator

    from core.admin import KeysFirstPaginator

    returns = (
        ReturnRequest.objects.filter(state__in=[ReturnState.SUBMITTED, ReturnState.CANCELLED])
        .select_related("invoice__customer", "submitted_by", "tax_request")
        .order_by("-created_at", "-id")
    )
    theirs, ours = Paginator(returns, 7), KeysFirstPaginator(returns, 7)
    assert ours.count == theirs.count
    for number in theirs.page_range:
        expected = list(theirs.page(number).object_list)
        with django_assert_num_queries(1):  # the rows with their joins, the count is cached
            page = list(ours.page(number).object_list)
            assert [rr.invoice.customer.name for rr in page]  # joined, no query more
        assert page == expected


def test_p5_a_searched_list_reads_its_keys_once_for_its_count_and_every_page(bench_returns):
    """``keys_once`` (the returns list when searched): the search runs in one query, whose
    keys give the count and every page; each page then reads its rows by their keys."""
    from django.core.paginator import Paginator
    from django.test.utils import CaptureQueriesContext

    from core.admin import KeysFirstPaginator

    rr = bench_returns.order_by("pk").first()
    returns = returns_matching(
        ReturnRequest.objects.select_related("invoice__customer").order_by("-created_at", "-id"),
        query=rr.invoice.customer.taxpayer_id,
    )
    theirs = Paginator(returns, 4)
    expected = [list(theirs.page(number).object_list) for number in theirs.page_range]
    assert theirs.count > 8  # three pages at least

    ours = KeysFirstPaginator(returns, 4, keys_once=True)
    with CaptureQueriesContext(connection) as queries:
        assert ours.count == theirs.count
        pages = [list(ours.page(number).object_list) for number in ours.page_range]
        assert [rr.invoice.customer.name for page in pages for rr in page]  # joined
    assert pages == expected
    assert len(queries) == 1 + len(pages)
    searched = [q["sql"] for q in queries.captured_queries if "LIKE" in q["sql"]]
    assert searched == [queries.captured_queries[0]["sql"]]

    # Past its limit, the list holds the limit's first rows and says it holds more.
    capped = KeysFirstPaginator(returns, 4, keys_once=True)
    capped.exact_limit = 5
    assert (capped.count, capped.count_is_capped, capped.num_pages) == (5, True, 2)
    assert list(capped.page(2).object_list) == expected[1][:1]


def _large_list_admins() -> list[admin.ModelAdmin]:
    return [
        model_admin
        for model_admin in admin.site._registry.values()
        if isinstance(model_admin, LargeListAdmin)
    ]


@pytest.mark.parametrize(
    "model_admin", _large_list_admins(), ids=lambda model_admin: model_admin.opts.label_lower
)
def test_p5_every_large_list_reads_its_first_page_in_its_default_order_off_an_index(
    model_admin, rf
):
    """The tables behind the back office's lists grow without bound (every return writes
    events, audit rows, SMS, ledger entries): each list's first page, in the order the admin
    gives it (its ordering, with Django's "-pk" for ties), is read off an index and stops after
    its rows, never a sort of the whole table (PostgreSQL's plan, sorts and sequential scans
    priced out: on tables this small the planner would otherwise sort)."""
    request = rf.get(f"/admin/{model_admin.opts.app_label}/{model_admin.opts.model_name}/")
    request.user = get_user_model()(is_superuser=True, is_staff=True, is_active=True)
    queryset = model_admin.get_changelist_instance(request).get_queryset(request)
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_sort = off")
    try:
        plan = queryset[: model_admin.list_per_page].explain()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = on")
            cursor.execute("SET enable_sort = on")
    assert "Sort" not in plan, plan
