"""The finance team's day-one back office (issue 11, part): finding anything, the customer
page with its running balance, month-end exports (.xlsx and CSV), rejection reasons in both
languages, the overdue work (paper reminders and closing, overdue tax-system tasks) and the
money on the overview. As a finance clerk would, through the Django test client."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from openpyxl import load_workbook

from core.audit.actor import Actor
from invoices.models import (
    InvoiceType,
    LedgerEntry,
    TaxRequest,
    TaxRequestState,
)
from invoices.rules import tax_request_is_overdue
from invoices.workdays import business_tz, overdue_cutoff
from notifications.models import SmsMessage, SmsPurpose
from returns.backoffice_selectors import (
    back_office_search,
    money_overview,
    tax_requests_overdue,
)
from returns.models import RejectionReason, ReturnRequest, ReturnState
from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF
from returns.services import return_request_reject, returns_chase_paper
from tests.factories import (
    CustomerFactory,
    issue_digital_invoice,
    issue_invoice,
    staff_in_role,
)
from tests.returns_helpers import log_paper, submit

pytestmark = pytest.mark.django_db

FIND_URL = "/admin/returns/returnrequest/find/"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture
def finance(db):
    return staff_in_role(FINANCE_STAFF, username="fin")


@pytest.fixture
def finance_client(client, finance):
    client.force_login(finance)
    return client


@pytest.fixture
def company(db):
    return CustomerFactory(name="杭州云启科技有限公司", mobile="+8613900139001")


@pytest.fixture
def other(db):
    return CustomerFactory(
        name="Shanghai Other", kind="individual", taxpayer_id="", mobile="+8613700000001"
    )


def age(rr: ReturnRequest, days: int) -> None:
    """Move a return's Refund click ``days`` into the past (the suite's way of moving time)."""
    ReturnRequest.objects.filter(pk=rr.pk).update(
        created_at=timezone.now() - dt.timedelta(days=days, minutes=1)
    )


def found(response, table: str) -> str:
    page = response.content.decode()
    start = page.find(f'id="found-{table}"')
    return page[start : page.find("</table>", start)] if start >= 0 else ""


# --- find anything --------------------------------------------------------------------------


@pytest.fixture
def two_returns(company):
    paper = issue_invoice(company, invoice_type=InvoiceType.SPECIAL, amount="1060.00")
    digital = issue_digital_invoice(company, amount="530.00")
    paper_return = submit(
        paper, certified=False, courier="SF Express", tracking_number="SF1234567890"
    )
    digital_return = submit(digital, buyer_booked=False)
    return paper, digital, paper_return, digital_return


@pytest.mark.parametrize(
    "key",
    [
        "taxpayer_id",
        "taxpayer_prefix",
        "name_part",
        "paper_number",
        "paper_code_and_number",
        "paper_scanned",
        "digital_number",
        "return_hash",
        "return_id",
        "tracking",
        "mobile_local",
        "mobile_e164",
    ],
)
def test_find_by_every_key_shows_the_customer_its_invoices_and_returns(
    finance_client, company, other, two_returns, key
):
    paper, digital, paper_return, digital_return = two_returns
    issue_invoice(other)  # must not be found
    query = {
        "taxpayer_id": company.taxpayer_id.lower(),  # typed in lower case
        "taxpayer_prefix": company.taxpayer_id[:10],
        "name_part": "云启科技",
        "paper_number": paper.number,
        "paper_code_and_number": f"{paper.code} {paper.number}",
        "paper_scanned": f"{paper.code}{paper.number}",
        "digital_number": digital.number,
        "return_hash": f"#{paper_return.pk}",
        "return_id": str(digital_return.pk),
        "tracking": "SF12345",
        "mobile_local": "13900139001",
        "mobile_e164": "+8613900139001",
    }[key]
    response = finance_client.get(FIND_URL, {"q": query})
    assert response.status_code == 200
    assert company.name in found(response, "customers")
    assert other.name not in response.content.decode()
    expected_invoice = digital if key in ("digital_number", "return_id") else paper
    assert expected_invoice.number in found(response, "invoices")
    expected_return = digital_return if key in ("digital_number", "return_id") else paper_return
    assert f"#{expected_return.pk}<" in found(response, "returns")


def test_find_says_when_nothing_matches(finance_client, company):
    response = finance_client.get(FIND_URL, {"q": "no such company"})
    assert "Nothing matches" in response.content.decode()


def test_find_uses_indexes_never_a_sequential_scan_of_the_big_tables(company, two_returns):
    """Each key the search looks up is served by its index (PostgreSQL's plan, with sequential
    scans priced out: on a table this small the planner would otherwise scan)."""
    from django.db.models import Q

    from invoices.models import Customer, Invoice
    from returns.models import MailReceipt

    paper = two_returns[0]
    tracked = Q(tracking_number__startswith="SF12") & ~Q(tracking_number="")
    lookups = {
        "customer_name_trgm_idx": Customer.objects.filter(name__icontains="云启科技"),
        "customer_taxpayer_id_idx": Customer.objects.filter(taxpayer_id__startswith="9111"),
        "customer_mobile_idx": Customer.objects.filter(mobile__startswith="+86139"),
        "invoice_number_idx": Invoice.objects.filter(number__startswith=paper.number[:6]),
        "return_tracking_idx": ReturnRequest.objects.filter(tracked),
        "mail_receipt_tracking_idx": MailReceipt.objects.filter(tracked),
    }
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    try:
        for index, queryset in lookups.items():
            plan = queryset.values("pk").explain()
            assert index in plan, plan
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = on")


def test_search_selector_keeps_a_fixed_number_of_queries(
    django_assert_max_num_queries, company, two_returns
):
    with django_assert_max_num_queries(8):
        results = back_office_search(query=company.taxpayer_id)
    assert len(results.returns) == 2


# --- the customer page ---------------------------------------------------------------------


def test_the_customer_page_shows_invoices_returns_sms_notes_and_the_ledger_with_its_balance(
    finance_client, finance, company, two_returns, django_assert_max_num_queries
):
    paper, digital, paper_return, _digital_return = two_returns
    log_paper(paper, finance, notes="Envelope torn but complete")
    url = f"/admin/invoices/customer/{company.pk}/page/"
    with django_assert_max_num_queries(20):
        response = finance_client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert paper.number in page
    assert digital.number in page
    assert f"#{paper_return.pk}" in page
    assert "Envelope torn but complete" in page
    # Funded 1060 + 530, applied for both: the balance after each entry, newest first.
    balances = [entry.balance for entry in response.context["page"].ledger]
    amounts = [entry.amount for entry in response.context["page"].ledger]
    assert balances[-1] == amounts[-1]
    for newer, older, amount in zip(balances, balances[1:], amounts, strict=False):
        assert newer == older + amount
    assert response.context["page"].balance == sum(
        LedgerEntry.objects.filter(customer=company).values_list("amount", flat=True),
        Decimal("0.00"),
    )
    # The customer has a mobile number: its SMS show (the received paper's text, if any).
    sms = SmsMessage.objects.filter(to=company.mobile)
    for message in sms:
        assert message.body in page


def test_the_customer_list_links_each_customer_to_its_page(finance_client, company):
    page = finance_client.get("/admin/invoices/customer/").content.decode()
    assert f"/admin/invoices/customer/{company.pk}/page/" in page


def test_the_customer_page_query_count_does_not_grow_with_the_customer(
    finance_client, company, django_assert_max_num_queries
):
    for _ in range(6):
        submit(issue_invoice(company), tracking_number="YT1")
    with django_assert_max_num_queries(20):
        assert finance_client.get(f"/admin/invoices/customer/{company.pk}/page/").status_code == 200


# --- exports --------------------------------------------------------------------------------


def workbook_of(response):
    content = b"".join(response.streaming_content)
    return load_workbook(io.BytesIO(content)).active


def test_the_filtered_returns_list_exports_to_excel_with_numbers_and_beijing_times(
    finance_client, company, two_returns
):
    paper, _digital, paper_return, _digital_return = two_returns
    response = finance_client.get(
        "/admin/returns/returnrequest/export.xlsx", {"medium__exact": "paper"}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="returns-')
    sheet = workbook_of(response)
    rows = list(sheet.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert (header[0], "total" in header) == ("return", True)
    assert [row[0] for row in body] == [paper_return.pk]  # the filter holds: paper only
    row = dict(zip(header, body[0], strict=True))
    assert row["total"] == 1060
    assert isinstance(row["total"], float | int)
    cell = sheet.cell(row=2, column=header.index("total") + 1)
    assert (cell.data_type, cell.number_format) == ("n", "#,##0.00")
    beijing = timezone.localtime(paper_return.created_at, business_tz()).replace(tzinfo=None)
    assert abs(row["submitted at"] - beijing) < dt.timedelta(seconds=1)  # not UTC: 8 h off
    assert row["invoice number"] == paper.number


def test_a_chinese_staff_user_gets_chinese_headers_and_labels(finance_client, two_returns):
    response = finance_client.get("/admin/returns/returnrequest/export.xlsx", **ZH)
    sheet = workbook_of(response)
    header = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    assert "价税合计" in header
    assert all(not str(value).isascii() for value in header), header
    states = {row[2] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert "已提交" in states or "处理中" in states or "等待税务系统" in states, states


def test_the_invoices_list_and_the_ledger_export_to_excel(finance_client, company, two_returns):
    paper, digital, *_ = two_returns
    sheet = workbook_of(finance_client.get("/admin/invoices/invoice/export.xlsx"))
    rows = list(sheet.iter_rows(values_only=True))
    numbers = {row[1] for row in rows[1:]}
    assert {paper.number, digital.number} <= numbers
    header = rows[0]
    tax_rate = sheet.cell(row=2, column=header.index("tax rate") + 1)
    assert (tax_rate.data_type, tax_rate.number_format) == ("n", "0%")

    sheet = workbook_of(
        finance_client.get(
            "/admin/invoices/ledgerentry/export.xlsx", {"kind__exact": "invoice_applied"}
        )
    )
    rows = list(sheet.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert len(body) == 2  # the two applications
    # The balance is the whole ledger's running sum, not the filtered rows': each application
    # follows its funding statement, so the balance after it is 0.00 or the first's remainder.
    entries = list(LedgerEntry.objects.filter(customer=company).order_by("id"))
    running, expected = Decimal("0.00"), {}
    for entry in entries:
        running += entry.amount
        expected[entry.pk] = running
    for row in body:
        record = dict(zip(header, row, strict=True))
        assert Decimal(str(record["balance"])) == expected[record["entry"]]
        assert record["amount"] < 0


def test_csv_exports_stream_utf8_with_plain_numbers_and_beijing_times(
    finance_client, company, two_returns
):
    paper_return = two_returns[2]
    response = finance_client.get("/admin/returns/returnrequest/export.csv", **ZH)
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header = rows[0]
    assert "价税合计" in header
    record = next(
        dict(zip(header, row, strict=True)) for row in rows[1:] if row[0] == str(paper_return.pk)
    )
    assert record["价税合计"] == "1060.00"
    local = timezone.localtime(paper_return.created_at, business_tz())
    assert record[header[1]] == f"{local:%Y-%m-%d %H:%M:%S}"
    assert company.name in text


def test_exports_need_the_view_permission(client, company, two_returns):
    nobody = staff_in_role(ADMIN_REVIEWERS, username="rev")
    client.force_login(nobody)
    assert client.get("/admin/invoices/ledgerentry/export.csv").status_code == 403
    client.force_login(company.user)  # a customer: the admin's login page
    assert client.get("/admin/returns/returnrequest/export.xlsx").status_code == 302


def test_the_export_iterates_rows_instead_of_loading_them(finance_client, two_returns, monkeypatch):
    """Rows are read through a chunked iterator (``QuerySet.iterator``), never a list."""
    from django.db.models.query import QuerySet

    calls = []
    original = QuerySet.iterator

    def spy(self, chunk_size=None):
        calls.append(chunk_size)
        return original(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    b"".join(finance_client.get("/admin/returns/returnrequest/export.csv").streaming_content)
    assert calls == [2000]


# --- rejection reasons ------------------------------------------------------------------------


def test_finance_rejects_with_a_listed_reason_and_the_customer_reads_it_in_their_language(
    finance_client, finance, company
):
    company.language = "zh-hans"
    company.save()
    english = CustomerFactory(language="en")
    reason = RejectionReason.objects.get(text_en="The paper invoice has not arrived.")
    zh_return = submit(issue_invoice(company))
    en_return = submit(issue_invoice(english))
    response = finance_client.post(
        "/admin/returns/returnrequest/",
        {
            "action": "reject",
            "_selected_action": [zh_return.pk, en_return.pk],
            "rejection_choice": reason.pk,
            "reason": "(SF1234)",
        },
        follow=True,
    )
    assert response.status_code == 200
    zh_return.refresh_from_db()
    en_return.refresh_from_db()
    assert zh_return.state == en_return.state == ReturnState.REJECTED
    assert (zh_return.rejection_choice, zh_return.rejection_note) == (reason, "(SF1234)")
    assert zh_return.rejection_reason == "我们尚未收到您寄回的纸质发票。 (SF1234)"
    assert en_return.rejection_reason == "The paper invoice has not arrived. (SF1234)"
    sms = SmsMessage.objects.get(related_return_id=zh_return.pk, purpose=SmsPurpose.RETURN_REJECTED)
    assert "我们尚未收到您寄回的纸质发票" in sms.body
    # The customer's return page shows the reason in the language the page is read in (issue
    # 12): the listed reason in Chinese or English, finance's own text as typed.
    finance_client.force_login(company.user)
    page = finance_client.get(f"/billing/returns/{zh_return.pk}/", **ZH).content.decode()
    assert "我们尚未收到您寄回的纸质发票。 (SF1234)" in page
    page = finance_client.get(f"/billing/returns/{zh_return.pk}/").content.decode()
    assert "The paper invoice has not arrived. (SF1234)" in page


def test_the_reject_action_offers_the_reasons_in_the_staff_users_language(finance_client, company):
    submit(issue_invoice(company))  # the action bar shows on a list with rows
    page = finance_client.get("/admin/returns/returnrequest/", **ZH).content.decode()
    assert "我们尚未收到您寄回的纸质发票。" in page
    page = finance_client.get("/admin/returns/returnrequest/").content.decode()
    assert "The paper invoice has not arrived." in page


def test_a_typed_reason_alone_still_rejects_and_a_retired_reason_is_refused(finance, company):
    rr = submit(issue_invoice(company))
    retired = RejectionReason.objects.create(text_en="Old", text_zh="旧", active=False)
    from returns.exceptions import InvalidReturnReason

    with pytest.raises(InvalidReturnReason):
        return_request_reject(
            return_request_id=rr.pk, actor=Actor.for_user(finance), rejection_choice_id=retired.pk
        )
    with pytest.raises(InvalidReturnReason):
        return_request_reject(return_request_id=rr.pk, actor=Actor.for_user(finance), reason="  ")
    rr = return_request_reject(
        return_request_id=rr.pk, actor=Actor.for_user(finance), reason="Typed only"
    )
    assert (rr.rejection_reason, rr.rejection_choice) == ("Typed only", None)


def test_only_superusers_edit_the_reasons_in_both_languages(finance_client, admin_client):
    assert finance_client.get("/admin/returns/rejectionreason/add/").status_code == 403
    response = admin_client.post(
        "/admin/returns/rejectionreason/add/",
        {"text_en": "Wrong envelope", "text_zh": "信封错误", "active": "on", "position": 9},
    )
    assert response.status_code == 302
    assert RejectionReason.objects.filter(text_zh="信封错误").exists()
    response = admin_client.post(
        "/admin/returns/rejectionreason/add/",
        {"text_en": "English only", "text_zh": "", "active": "on", "position": 9},
    )
    assert response.status_code == 200  # the form says the Chinese text is required
    assert not RejectionReason.objects.filter(text_en="English only").exists()


# --- overdue work -----------------------------------------------------------------------------


def reminders(rr):
    return list(
        SmsMessage.objects.filter(related_return_id=rr.pk, purpose=SmsPurpose.PAPER_REMINDER)
        .order_by("id")
        .values_list("idempotency_key", flat=True)
    )


def test_paper_reminders_at_14_and_30_days_once_each_and_closed_at_60(company):
    rr = submit(issue_invoice(company))
    returns_chase_paper()
    assert reminders(rr) == []
    age(rr, 14)
    returns_chase_paper()
    returns_chase_paper()  # run twice: still one reminder
    assert reminders(rr) == [f"return:{rr.pk}:paper_reminder:14"]
    age(rr, 30)
    returns_chase_paper()
    returns_chase_paper()
    assert reminders(rr) == [
        f"return:{rr.pk}:paper_reminder:14",
        f"return:{rr.pk}:paper_reminder:30",
    ]
    age(rr, 60)
    returns_chase_paper()
    returns_chase_paper()
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    assert "did not arrive within 60 days" in rr.rejection_reason
    closing = SmsMessage.objects.filter(related_return_id=rr.pk, purpose=SmsPurpose.RETURN_REJECTED)
    assert closing.count() == 1
    assert rr.events.filter(to_state=ReturnState.REJECTED, actor=None).count() == 1


def test_the_beat_task_is_scheduled_daily_and_runs_the_chase(settings, company):
    from returns.tasks import returns_chase_paper_task

    assert settings.CELERY_BEAT_SCHEDULE["chase-paper"]["task"] == returns_chase_paper_task.name
    rr = submit(issue_invoice(company))
    age(rr, 31)  # first seen late: only the latest reminder due is sent
    returns_chase_paper_task.delay()
    returns_chase_paper_task.delay()
    assert reminders(rr) == [f"return:{rr.pk}:paper_reminder:30"]


def test_no_reminder_for_paper_received_certified_digital_or_cancelled_returns(finance, company):
    received = submit(issue_invoice(company))
    log_paper(received.invoice, finance)
    digital = submit(issue_digital_invoice(company), buyer_booked=False)
    for rr in (received, digital):
        age(rr, 61)
    report = returns_chase_paper()
    assert (report.closed, report.reminded) == ([], {})
    assert not SmsMessage.objects.filter(purpose=SmsPurpose.PAPER_REMINDER).exists()


def test_the_chinese_reminder_is_in_chinese(company):
    company.language = "zh-hans"
    company.save()
    rr = submit(issue_invoice(company))
    age(rr, 15)
    returns_chase_paper()
    sms = SmsMessage.objects.get(related_return_id=rr.pk, purpose=SmsPurpose.PAPER_REMINDER)
    assert rr.invoice.number in sms.body
    assert "纸质发票" in sms.body


def make_pending_request(company, *, requested_at):
    invoice = issue_invoice(company)
    return TaxRequest.objects.create(
        serial=f"T{invoice.pk:010d}",
        invoice=invoice,
        operation="void",
        reason_code="issuing_error",
        backend="manual",
        created_at=requested_at,
    )


def test_tax_tasks_pending_more_than_3_working_days_are_flagged_in_the_queue_and_overview(
    finance_client, company
):
    now = timezone.now()
    old = make_pending_request(company, requested_at=now - dt.timedelta(days=10))
    TaxRequest.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=10))
    fresh = make_pending_request(company, requested_at=now)
    old.refresh_from_db()
    assert tax_request_is_overdue(old, now=now)
    assert not tax_request_is_overdue(fresh, now=now)
    assert list(tax_requests_overdue(now=now)) == [old]
    page = finance_client.get("/admin/invoices/taxrequest/?state__exact=pending").content.decode()
    assert page.count("Overdue: more than 3 working days") == 1
    index = finance_client.get("/admin/").content.decode()
    assert 'id="tax-tasks-overdue">1<' in index


def test_the_overdue_rule_and_its_sql_cutoff_agree_on_every_hour_around_the_holidays():
    """The queue's flag (a rule over a row) and the overview's count (a cutoff in SQL) say the
    same for requests made at any hour of 30 days, including the National Day week."""
    tz = business_tz()
    now = dt.datetime(2025, 10, 9, 9, 0, tzinfo=tz)
    cutoff = overdue_cutoff(now)
    moment = now - dt.timedelta(days=30)
    while moment < now:
        request = TaxRequest(state=TaxRequestState.PENDING, created_at=moment)
        assert tax_request_is_overdue(request, now=now) == (moment < cutoff), moment
        moment += dt.timedelta(hours=1)


def test_open_returns_show_their_age_in_the_list(
    finance_client, company, django_assert_max_num_queries
):
    open_return = submit(issue_invoice(company))
    age(open_return, 9)
    for _ in range(5):
        submit(issue_invoice(company))
    with django_assert_max_num_queries(12):
        response = finance_client.get("/admin/returns/returnrequest/")
    page = response.content.decode()
    assert '<td class="field-days_waiting">9</td>' in page


# --- money on the overview -------------------------------------------------------------------


def test_the_overview_shows_money_awaiting_and_restored_by_outcome_and_kind(
    finance_client, finance, company, django_capture_on_commit_callbacks
):
    awaiting = submit(issue_invoice(company, amount="212.00"))
    digital = issue_digital_invoice(company, invoice_type=InvoiceType.SPECIAL, amount="106.00")
    paper = issue_invoice(company, amount="318.00")
    with django_capture_on_commit_callbacks(execute=True):
        submit(digital, buyer_booked=False)  # the sandbox reverses it at once: restored
    submit(paper)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(paper, finance)  # this month, not certified: voided, restored
    money = money_overview()
    assert (money.awaiting_count, money.awaiting_total) == (1, Decimal("212.00"))
    assert (money.restored_count, money.restored_total) == (2, Decimal("424.00"))
    outcomes = {line.label: line.total for line in money.restored_by_outcome}
    assert outcomes == {
        "Voided": Decimal("318.00"),
        "Reversed (red-letter invoice)": Decimal("106.00"),
    }
    kinds = {line.label: line.total for line in money.restored_by_kind}
    assert kinds["Digital invoice (VAT special invoice)"] == Decimal("106.00")
    assert kinds["Paper VAT ordinary invoice"] == Decimal("318.00")
    page = finance_client.get("/admin/").content.decode()
    assert 'id="money-awaiting">¥212.00<' in page
    assert 'id="money-restored">¥424.00<' in page
    assert awaiting.state == ReturnState.SUBMITTED
