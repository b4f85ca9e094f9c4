"""Management commands of the public contract: demo_data and check_ledger."""

import datetime as dt
import re
from contextlib import contextmanager, nullcontext
from io import StringIO
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from core.audit.actor import Actor
from invoices.models import (
    ApplicationState,
    Customer,
    Invoice,
    InvoiceApplication,
    InvoiceMedium,
    InvoiceState,
    InvoiceType,
    Issuer,
    LedgerEntry,
    LedgerKind,
    RedLetterInvoice,
    Statement,
    TaxOperation,
    TaxRequest,
    TaxRequestState,
    TaxSandboxOperation,
)
from invoices.tax import breakdown_from_total, breakdown_of
from invoices.taxpayer import validate_taxpayer_id
from invoices.taxsystem.interface import RedLetterIssued, TaxResult
from invoices.taxsystem.services import tax_submission
from notifications.models import SmsMessage, SmsStatus
from returns.management.commands._demo_story import uscc
from returns.models import (
    BLOCKING_STATES,
    FormReviewState,
    MailReceipt,
    RedLetterForm,
    ReturnEvent,
    ReturnRequest,
)
from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF
from returns.rules import paper_is_complete
from returns.selectors import returns_awaiting_paper, returns_awaiting_tax_system
from returns.services import (
    red_letter_form_review,
    return_request_record_outcome,
    return_request_retry,
)
from tests.factories import VALID_USCC, CustomerFactory, UserFactory, fund, mailing_fields

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    # demo_data is a development command (make run sets DJANGO_DEBUG=true); pytest-django runs
    # every test with DEBUG off, where demo_data refuses (tests/security/test_fail_closed.py).
    development = override_settings(DEBUG=True) if args[0] == "demo_data" else nullcontext()
    with development:
        call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def test_check_ledger_passes_after_a_completed_return(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    from tests.returns_helpers import log_paper, submit

    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    assert ReturnRequest.objects.get().state == "completed"
    assert "OK" in run("check_ledger")


def test_check_ledger_fails_when_a_voided_invoice_has_no_credit(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(state=InvoiceState.VOIDED)
    with pytest.raises(CommandError) as excinfo:
        run("check_ledger")
    assert excinfo.value.returncode == 1


def test_check_ledger_reports_the_disagreement(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(state=InvoiceState.VOIDED)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_ledger", stdout=StringIO(), stderr=err)
    report = err.getvalue()
    assert f"invoice {invoice.code} {invoice.number} is voided but has 0 returned credits" in report
    assert "ledger says" in report  # the balance check disagrees too


def test_check_ledger_detects_a_balance_that_dipped_below_zero_even_if_covered_later(customer):
    # An application that bypassed the service (no lock, no balance check) overdraws...
    application = InvoiceApplication.objects.create(
        customer=customer,
        invoice_type="ordinary",
        title="x",
        amount="50.00",
        taxpayer_id=VALID_USCC,
        **mailing_fields(),
    )
    LedgerEntry.objects.create(
        customer=customer, kind=LedgerKind.INVOICE_APPLIED, amount="-50.00", application=application
    )
    # ...and a later statement covers it, so the final balance (50.00) looks fine.
    fund(customer, "100.00")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_ledger", stdout=StringIO(), stderr=err)
    assert f"customer {customer.pk}: invoiceable amount went negative (-50.00)" in err.getvalue()


# --- demo_data -------------------------------------------------------------------------------
# `make run` loads it; a Chinese finance clerk should believe every row of it.

EVERY_STATE = [
    "awaiting_tax",
    "cancelled",
    "completed:reversed",
    "completed:voided",
    "failed",
    "received",
    "rejected",
    "submitted",
]  # processing is transient: the task moves it on at once


def demo_customer() -> Customer:
    return Customer.objects.get(user__username="demo-customer")


def state_of(rr: ReturnRequest) -> str:
    return f"{rr.state}:{rr.outcome}" if rr.outcome else rr.state


def local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(ZoneInfo("Asia/Shanghai"))


def table_counts() -> dict[str, int]:
    models = [
        get_user_model(),
        Customer,
        Statement,
        InvoiceApplication,
        Invoice,
        LedgerEntry,
        ReturnRequest,
        ReturnEvent,
        MailReceipt,
        RedLetterForm,
        TaxRequest,
        TaxSandboxOperation,
        RedLetterInvoice,
        SmsMessage,
    ]
    return {model.__name__: model.objects.count() for model in models}


@contextmanager
def clock_at(moment: dt.datetime):
    """Run as if it were ``moment`` (Asia/Shanghai business time included)."""
    with mock.patch("django.utils.timezone.now", return_value=moment.astimezone(dt.UTC)):
        yield


def test_demo_data_gives_returnable_invoices_of_both_types_this_month_and_earlier():
    output = run("demo_data")
    for username in ("demo-customer", "demo-finance", "demo-reviewer"):
        assert username in output
    customer = demo_customer()
    returnable = customer.invoices.filter(
        issuer=Issuer.PROVIDER, state=InvoiceState.ISSUED
    ).exclude(return_requests__state__in=BLOCKING_STATES)
    this_month = local(timezone.now()).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for invoice_type in (InvoiceType.SPECIAL, InvoiceType.ORDINARY):
        of_type = returnable.filter(invoice_type=invoice_type)
        assert of_type.filter(issued_at__gte=this_month).exists(), invoice_type
        assert of_type.filter(issued_at__lt=this_month).exists(), invoice_type
    assert customer.invoices.filter(issuer=Issuer.MARKETPLACE).count() == 1


def test_demo_data_gives_demo_customer_a_return_in_every_state():
    run("demo_data")
    paper_returns = ReturnRequest.objects.filter(
        invoice__customer=demo_customer(), medium=InvoiceMedium.PAPER
    )
    returns = {state_of(rr): rr for rr in paper_returns.select_related("invoice", "tax_request")}
    assert sorted(returns) == EVERY_STATE
    assert paper_returns.count() == 8

    waiting_for_review = returns["received"]
    assert waiting_for_review.invoice.is_special
    assert waiting_for_review.certified
    form = RedLetterForm.objects.get(return_request=waiting_for_review)
    assert form.review_state == FormReviewState.PENDING
    assert len(form.form_number) == 16
    assert form.form_number.isdigit()

    awaiting = returns["awaiting_tax"].tax_request
    assert (awaiting.backend, awaiting.state) == ("manual", TaxRequestState.PENDING)
    assert awaiting.operation == TaxOperation.RED_LETTER
    assert awaiting.seller_files_form

    voided = returns["completed:voided"]
    assert voided.invoice.invoice_type == InvoiceType.ORDINARY
    assert local(voided.invoice.issued_at).month == local(timezone.now()).month
    assert voided.tax_request.voided_on is not None

    reversed_ = returns["completed:reversed"]
    red = RedLetterInvoice.objects.get(original=reversed_.invoice)
    assert red.tax_request.backend == "sandbox"
    assert (red.amount, red.tax, red.total) == (
        -reversed_.invoice.amount,
        -reversed_.invoice.tax,
        -reversed_.invoice.total,
    )

    rejected = returns["rejected"]
    assert rejected.mail_receipt is not None
    assert not paper_is_complete(rejected.mail_receipt)
    assert rejected.rejection_reason

    failed = returns["failed"]
    assert failed.tax_request.state == TaxRequestState.REFUSED
    assert "TAX_SANDBOX_FAIL" in failed.tax_request.error
    assert failed.error

    assert returns["submitted"].mail_receipt is None
    assert returns["submitted"].tracking_number


def test_demo_data_gives_digital_invoices_of_both_kinds_and_a_digital_return_in_each_state():
    run("demo_data")
    digital = Invoice.objects.filter(customer=demo_customer(), medium=InvoiceMedium.DIGITAL)
    assert set(digital.values_list("invoice_type", flat=True)) == {"special", "ordinary"}
    for invoice in digital:
        assert invoice.code == ""
        assert len(invoice.number) == 20
        assert invoice.document.name.endswith(".pdf")
    returnable = digital.filter(state=InvoiceState.ISSUED).exclude(
        return_requests__state__in=BLOCKING_STATES
    )
    assert set(returnable.values_list("invoice_type", flat=True)) == {"special", "ordinary"}
    returns = ReturnRequest.objects.filter(invoice__in=digital).select_related("tax_request")
    by_state: dict[str, list[ReturnRequest]] = {}
    for rr in returns:
        by_state.setdefault(state_of(rr), []).append(rr)
    assert sorted(by_state) == [
        "awaiting_buyer",
        "awaiting_tax",
        "completed:reversed",
        "failed",
        "rejected",
    ]  # submitted and processing are transient: a digital return moves on at once
    waiting = by_state["awaiting_buyer"][0].tax_request
    assert waiting.confirm_by > timezone.now()  # still time for the tester to confirm
    assert len(waiting.red_letter_form_number) == 20
    assert by_state["awaiting_tax"][0].tax_request.backend == "manual"
    reasons = sorted(rr.rejection_reason for rr in by_state["rejected"])
    assert len(reasons) == 2
    assert "72" in reasons[0] or "72" in reasons[1]  # one lapsed
    decisions = {rr.tax_request.buyer_decision for rr in by_state["rejected"]}
    assert decisions == {"refused", "expired"}
    completed = by_state["completed:reversed"][0]
    red = completed.invoice.red_letter_invoice
    assert (red.code, len(red.number), len(red.red_letter_form_number)) == ("", 20, 20)


def test_demo_data_fills_each_back_office_queue_and_puts_the_staff_in_their_roles():
    run("demo_data")
    users = get_user_model().objects
    finance, reviewer = users.get(username="demo-finance"), users.get(username="demo-reviewer")
    assert list(finance.groups.values_list("name", flat=True)) == [FINANCE_STAFF]
    assert list(reviewer.groups.values_list("name", flat=True)) == [ADMIN_REVIEWERS]
    assert finance.has_perm("returns.log_mailreceipt")
    assert reviewer.has_perm("returns.review_redletterform")
    # Finance's "To do in the tax system": a paper and a digital reversal; and a digital
    # invoice's confirmation form awaiting its buyer.
    assert returns_awaiting_tax_system().count() == 3
    assert RedLetterForm.objects.filter(review_state=FormReviewState.PENDING).count() == 1
    assert InvoiceApplication.objects.filter(state=ApplicationState.PENDING).count() == 1
    assert returns_awaiting_paper().count() == 2  # from two companies
    # Paper that came before its online return, waiting to be matched (R4).
    assert MailReceipt.objects.filter(return_requests__isnull=True).count() == 1


def test_demo_data_is_idempotent_and_check_ledger_passes_after_each_run():
    run("demo_data")
    assert "OK" in run("check_ledger")
    counts = table_counts()
    run("demo_data")
    assert "OK" in run("check_ledger")
    assert table_counts() == counts
    # Every paper state (8) and every digital end state (6) for demo-customer, one for the second.
    assert counts["ReturnRequest"] == 15


def test_demo_data_run_again_next_month_changes_nothing():
    run("demo_data")
    counts = table_counts()
    with clock_at(timezone.now() + dt.timedelta(days=40)):
        run("demo_data")
    assert table_counts() == counts


def test_demo_data_in_the_first_minutes_of_a_month_keeps_every_state_and_date_order():
    first = dt.datetime(2027, 3, 1, 0, 5, tzinfo=ZoneInfo("Asia/Shanghai"))
    with clock_at(first):
        run("demo_data")
        assert "OK" in run("check_ledger")
    states = sorted(
        state_of(rr)
        for rr in ReturnRequest.objects.filter(
            invoice__customer=demo_customer(), medium=InvoiceMedium.PAPER
        )
    )
    assert states == EVERY_STATE
    digital_states = ReturnRequest.objects.filter(medium=InvoiceMedium.DIGITAL)
    assert set(digital_states.values_list("state", flat=True)) == {
        "awaiting_buyer",
        "awaiting_tax",
        "completed",
        "failed",
        "rejected",
    }
    voided = ReturnRequest.objects.get(invoice__customer=demo_customer(), outcome="voided")
    assert first.replace(minute=0) <= voided.invoice.issued_at <= voided.created_at <= first
    assert_dates_in_order(now=first)


def test_r13_every_demo_taxpayer_id_is_a_valid_unified_social_credit_code():
    run("demo_data")
    ids = set(Customer.objects.values_list("taxpayer_id", flat=True))
    ids |= set(InvoiceApplication.objects.values_list("taxpayer_id", flat=True))
    assert len(ids) == 2
    for taxpayer_id in ids:
        assert len(taxpayer_id) == 18
        assert validate_taxpayer_id(taxpayer_id) == taxpayer_id


def test_demo_check_characters_agree_with_a_published_code():
    # 91110000600037341L: both check characters (GB 11714's "1", GB 32100's "L") computed.
    assert uscc(authority_and_kind="91", division="110000", org_code_body="60003734") == VALID_USCC


def test_demo_customer_mobiles_are_e164_mainland_numbers_in_the_test_range():
    run("demo_data")
    mobiles = list(Customer.objects.values_list("mobile", flat=True))
    assert len(mobiles) == 2
    for mobile in mobiles:
        assert re.fullmatch(r"\+861380013\d{4}", mobile), mobile
    assert set(SmsMessage.objects.values_list("to", flat=True)) <= set(mobiles)


def assert_dates_in_order(*, now: dt.datetime | None = None) -> None:
    """Applied, then issued, then returned, then the paper received, then the outcome."""
    for invoice in Invoice.objects.filter(issuer=Issuer.PROVIDER).select_related("application"):
        assert invoice.application.created_at <= invoice.issued_at, invoice
        for rr in invoice.return_requests.all():
            assert invoice.issued_at <= rr.created_at, rr
            events = list(rr.events.order_by("id").values_list("created_at", flat=True))
            assert events == sorted(events), rr
            assert events[0] >= rr.created_at, rr
            if rr.mail_receipt is not None:
                assert rr.created_at <= rr.mail_receipt.received_at, rr
        for receipt in invoice.mail_receipts.all():
            assert invoice.issued_at <= receipt.received_at
        red = RedLetterInvoice.objects.filter(original=invoice).first()
        if red is not None:
            assert local(invoice.issued_at).date() <= red.issued_on
    for statement in Statement.objects.all():
        assert statement.settled_at.date() > statement.period
    assert max(LedgerEntry.objects.values_list("created_at", flat=True)) <= (now or timezone.now())


def test_demo_dates_are_in_order():
    run("demo_data")
    assert_dates_in_order()


def test_demo_invoices_use_one_code_per_kind_numbered_in_issue_order():
    run("demo_data")
    provider = Invoice.objects.filter(issuer=Issuer.PROVIDER, medium=InvoiceMedium.PAPER)
    for invoice_type, digits in ((InvoiceType.SPECIAL, 10), (InvoiceType.ORDINARY, 12)):
        of_type = provider.filter(invoice_type=invoice_type).order_by("issued_at")
        codes = set(of_type.values_list("code", flat=True))
        assert len(codes) == 1
        assert len(codes.pop()) == digits
        numbers = list(of_type.values_list("number", flat=True))
        assert numbers == sorted(numbers)
        assert len(set(numbers)) == len(numbers)


def test_demo_invoices_print_the_tax_split_of_their_total():
    run("demo_data")
    for invoice in Invoice.objects.all():
        assert breakdown_of(invoice) == breakdown_from_total(invoice.total), invoice
        if invoice.application is not None:
            assert invoice.total == invoice.application.amount


def test_demo_data_is_chinese_by_default():
    run("demo_data")
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for customer in Customer.objects.all():
        assert customer.language == "zh-hans"
        assert cjk.search(customer.name), customer.name
    for application in InvoiceApplication.objects.all():
        if application.medium == InvoiceMedium.DIGITAL:
            assert application.email  # the file goes by email: nothing to mail
            assert application.mailing_address == ""
        else:
            assert cjk.search(application.mailing_address)
            assert cjk.search(application.mailing_recipient)
        if application.invoice_type == InvoiceType.SPECIAL:
            assert cjk.search(application.registered_address)
            assert cjk.search(application.bank_name)
    for rr in ReturnRequest.objects.all():
        assert cjk.search(rr.reason), rr.reason


def test_demo_data_prints_what_each_log_in_will_see():
    output = run("demo_data")
    assert '"To do in the tax system": 2 tasks' in output
    assert "1 red-letter confirmation form awaiting its buyer" in output
    assert '"Red-letter forms to review": 1 form' in output
    assert "password demo-pass-2026" in output
    for rr in ReturnRequest.objects.filter(invoice__customer=demo_customer()):
        assert f"/billing/returns/{rr.pk}/" in output


def test_demo_data_leaves_an_earlier_versions_demo_customer_alone():
    CustomerFactory(user=UserFactory(username="demo-customer"), name="Hangzhou Demo Co., Ltd.")
    output = run("demo_data")
    assert "earlier version" in output
    assert not Invoice.objects.filter(customer__user__username="demo-customer").exists()


@pytest.mark.django_db(transaction=True)
def test_demo_data_as_make_run_loads_it_with_tasks_run_on_commit():
    """`make run`: no surrounding transaction, Celery eager, so each step's tasks run on its
    commit, with the step's tax-system settings: the manual request stays in the queue."""
    run("demo_data")
    states = sorted(
        state_of(rr)
        for rr in ReturnRequest.objects.filter(
            invoice__customer=demo_customer(), medium=InvoiceMedium.PAPER
        )
    )
    assert states == EVERY_STATE
    pending = TaxRequest.objects.filter(state=TaxRequestState.PENDING)
    assert set(pending.values_list("backend", "medium")) == {
        ("manual", "paper"),
        ("manual", "digital"),
    }
    assert not TaxSandboxOperation.objects.filter(
        serial__in=TaxRequest.objects.filter(backend="manual").values("serial")
    ).exists()
    sent = SmsMessage.objects.filter(status=SmsStatus.SENT)
    assert sent.count() == SmsMessage.objects.count() >= 4
    assert "OK" in run("check_ledger")
    counts = table_counts()
    run("demo_data")
    assert table_counts() == counts


def test_demo_back_office_work_can_be_done_and_the_ledger_stays_true(
    django_capture_on_commit_callbacks,
):
    """What the printed log-ins invite: finance records the tax system's outcome of its task
    and retries the failed return, the reviewer approves the form; each return completes."""
    run("demo_data")
    users = get_user_model().objects
    finance, reviewer = users.get(username="demo-finance"), users.get(username="demo-reviewer")
    task = returns_awaiting_tax_system().get(medium=InvoiceMedium.PAPER)
    submission = tax_submission(task.tax_request)
    today = local(timezone.now()).date()
    red = breakdown_of(task.invoice).negated()
    with django_capture_on_commit_callbacks(execute=True):
        return_request_record_outcome(
            return_request_id=task.pk,
            result=TaxResult.reversed(
                submission.serial,
                RedLetterIssued(
                    code=task.invoice.code,  # a paper red-letter invoice keeps the code
                    number="04531188",
                    issued_on=today,
                    amount=red.amount,
                    tax_rate=red.tax_rate,
                    tax=red.tax,
                    total=red.total,
                    red_letter_form_number=f"33010{today:%y%m%d}00031",
                ),
            ),
            actor=Actor.for_user(finance),
        )
        failed = list(ReturnRequest.objects.filter(state="failed"))  # a paper and a digital one
        assert len(failed) == 2
        for rr in failed:
            return_request_retry(return_request_id=rr.pk, actor=Actor.for_user(finance))
        form = RedLetterForm.objects.get(review_state=FormReviewState.PENDING)
        red_letter_form_review(
            red_letter_form_id=form.pk, reviewer=Actor.for_user(reviewer), approve=True
        )
    for rr in (task, *failed, form.return_request):
        rr.refresh_from_db()
        assert state_of(rr) == "completed:reversed", rr
    assert "OK" in run("check_ledger")
