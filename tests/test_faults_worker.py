"""Faults 1 and 2: a worker killed mid-task, and Redis down while people work (for a moment,
with the sweepers; for 60 s, with the outbox relay).

Real PostgreSQL, a ``redis-server`` of the test's own on a spare port, real worker processes
(``tests/processes.py``); all are stopped at the end even when a test fails.
"""

import time

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from core.models import OutboxMessage
from invoices.models import Invoice
from notifications.models import SmsMessage, SmsPurpose, SmsStatus
from notifications.tasks import sms_requeue_stuck_task
from returns.models import ReturnRequest, ReturnState
from returns.tasks import returns_requeue_stuck_task
from tests.factories import CustomerFactory, UserFactory, issue_invoice, staff_in_role
from tests.processes import RELAY, celery_publishing_to, database_url, wait_for
from tests.returns_helpers import assert_returned_exactly_once, log_paper, submit

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker(private_redis):
    with celery_publishing_to(private_redis.url):
        yield private_redis


def _log_paper_on_the_receipt_page(client: Client, invoice: Invoice):
    return client.post(
        "/admin/returns/mailreceipt/log/",
        {
            "code_and_number": f"{invoice.code} {invoice.number}",
            "invoice_form_present": "on",
            "undamaged": "on",
            "received_at": "2026-11-24T10:00",
        },
        follow=True,
    )


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def _all_sent_and_completed(*invoices: Invoice):
    def check() -> bool:
        returns = ReturnRequest.objects.filter(invoice__in=invoices)
        return (
            returns.filter(state=ReturnState.COMPLETED).count() == len(invoices)
            and not SmsMessage.objects.exclude(status=SmsStatus.SENT).exists()
            and SmsMessage.objects.filter(purpose=SmsPurpose.RETURN_COMPLETED).count()
            == len(invoices)
        )

    return check


def _backends_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_r6_r7_r8_fault_a_worker_killed_mid_processing_completes_the_return_exactly_once(
    broker, start_worker
):
    invoice = issue_invoice(CustomerFactory())
    submit(invoice)
    log_paper(invoice, UserFactory(is_staff=True))  # published to Redis; no worker yet
    assert ReturnRequest.objects.get(invoice=invoice).state == ReturnState.PROCESSING

    # Hold the worker inside return_request_process: another transaction locks the invoice.
    with psycopg.connect(database_url(), autocommit=False) as holder:
        holder.execute(
            f"SELECT id FROM {Invoice._meta.db_table} WHERE id = %s FOR UPDATE",  # noqa: S608 (the model's own table)
            [invoice.pk],
        )
        worker = start_worker(broker_url=broker.url, name="killed", pool="prefork")
        wait_for(
            lambda: _backends_waiting_for_a_lock() >= 1,
            timeout=60,
            what="the worker to block inside processing",
            processes=(worker,),
        )
        [child] = worker.pool_children()
        worker.kill_pid(child)  # SIGKILL the process running the task, mid-transaction
        wait_for(
            lambda: "WorkerLostError" in worker.log_path.read_text(errors="replace"),
            timeout=30,
            what="the worker to notice the lost task",
            processes=(worker,),
        )
        holder.rollback()  # release the lock; the redelivered task may now run

    wait_for(_all_sent_and_completed(invoice), timeout=90, what="the return", processes=(worker,))
    assert_returned_exactly_once(invoice)
    call_command("check_ledger")


def test_r8_fault_redis_down_while_submitting_and_logging_paper_then_the_sweeper_finishes(
    broker, start_worker
):
    submitted_first = issue_invoice(CustomerFactory())
    paper_first = issue_invoice(CustomerFactory())
    submit(submitted_first)
    finance = Client()
    finance.force_login(staff_in_role("Finance staff", username="finance-fault"))
    customer = Client()
    customer.force_login(paper_first.customer.user)
    broker.stop()

    started = time.monotonic()
    # Finance logs the receipt on the back-office page: matched, processing, publishing fails.
    logged = _log_paper_on_the_receipt_page(finance, submitted_first)
    # Paper that arrives before the customer's return: logged unmatched, nothing to publish.
    held = _log_paper_on_the_receipt_page(finance, paper_first)
    # The customer clicks Refund: matched to the paper, processing, publishing fails.
    refunded = customer.post(
        f"/billing/invoices/{paper_first.pk}/refund/",
        {
            "problem": "title",
            "reason_code": "issuing_error",
            "reason": "The title misses our branch name",
        },
        follow=True,
    )
    assert time.monotonic() - started < 20  # each failed publish gives up within seconds
    # Each person sees an ordinary success page: the broker outage is not their problem.
    assert [r.status_code for r in (logged, held, refunded)] == [200, 200, 200]
    assert "being processed" in _messages(logged)
    assert "unmatched" in _messages(held)
    assert refunded.redirect_chain[-1][0].startswith("/billing/returns/")

    returns = ReturnRequest.objects.filter(invoice__in=[submitted_first, paper_first])
    assert [rr.state for rr in returns] == [ReturnState.PROCESSING] * 2
    # The success SMS rows are written by processing, which has not run: none exist yet.
    assert not SmsMessage.objects.exists()

    broker.start()
    worker = start_worker(
        broker_url=broker.url,
        name="sweeper",
        env={
            "RETURN_PROCESSING_REQUEUE_AFTER_SECONDS": "0",
            "SMS_QUEUED_REQUEUE_AFTER_SECONDS": "0",
        },
    )
    returns_requeue_stuck_task.delay()  # what beat publishes every SWEEP_INTERVAL_SECONDS
    sms_requeue_stuck_task.delay()

    wait_for(
        _all_sent_and_completed(submitted_first, paper_first),
        timeout=90,
        what="the sweeper to finish the work",
        processes=(worker,),
    )
    assert_returned_exactly_once(submitted_first)
    assert_returned_exactly_once(paper_first)
    assert SmsMessage.objects.count() == 2  # one "completed" per return
    call_command("check_ledger")


BROKER_OUTAGE_SECONDS = 60


def _lines(worker) -> int:
    return worker.log_path.read_text(errors="replace").count("\n")


@pytest.mark.xdist_group("fault_broker_down")
def test_r8_fault_broker_down_60_s_every_return_and_sms_completes_within_30_s_of_its_return(
    broker, start_worker, figures
):
    """Redis stopped for 60 s (without persistence: what it held is gone) while returns are
    in flight and finance logs paper. No sweeper runs: the outbox relay publishes what the
    broker refused at commit and, seeing a new Redis, what it may have lost."""
    relay = start_worker(broker_url=broker.url, name="relay", command=RELAY)
    worker = start_worker(
        broker_url=broker.url, name="broker-down", env={"TAX_SANDBOX_DELAY_SECONDS": "5"}
    )
    finance = UserFactory(username="finance-broker-down", is_staff=True)
    in_flight = [issue_invoice(CustomerFactory()) for _ in range(3)]
    during = [issue_invoice(CustomerFactory()) for _ in range(4)]
    for invoice in in_flight + during:
        submit(invoice)
    for invoice in in_flight:
        log_paper(invoice, finance)
    # Their void is requested from the tax system, which answers in 5 s: the poll waits in
    # the worker (a countdown) when Redis goes away.
    wait_for(
        lambda: (
            ReturnRequest.objects.filter(
                invoice__in=in_flight, state=ReturnState.AWAITING_TAX
            ).count()
            == len(in_flight)
        ),
        timeout=60,
        what="the in-flight returns to await the tax system",
        processes=(worker, relay),
    )

    broker.stop()
    down_at = time.monotonic()
    lines_at_down = _lines(worker) + _lines(relay)
    for invoice in during:
        log_paper(invoice, finance)  # committed; the broker refuses the task: kept in the outbox
    commits_took = time.monotonic() - down_at
    unpublished = OutboxMessage.objects.filter(published_at__isnull=True).count()
    time.sleep(max(0.0, BROKER_OUTAGE_SECONDS - (time.monotonic() - down_at)))
    lines_during = _lines(worker) + _lines(relay) - lines_at_down
    broker.start()
    back_at = time.monotonic()

    every = in_flight + during
    wait_for(
        _all_sent_and_completed(*every),
        timeout=90,
        what="every return and SMS after the broker came back",
        processes=(worker, relay),
    )
    recovered = time.monotonic() - back_at
    relay_log = relay.log_path.read_text(errors="replace")
    figures(
        f"\nbroker down {BROKER_OUTAGE_SECONDS} s (redis-server stopped, nothing persisted): "
        f"{len(in_flight)} returns in flight, paper logged for {len(during)} more during the "
        f"outage in {commits_took:.1f} s ({unpublished} tasks left in the outbox, unpublished); "
        f"{lines_during} worker + relay log lines during the outage; "
        f"relay: {relay_log.count('The broker restarted')} broker restart noticed, "
        f"{relay_log.count('outbox relay: published')} publishing round(s); all "
        f"{len(every)} returns completed and {len(every)} SMS sent {recovered:.1f} s after the "
        "broker came back (target <= 30 s; no sweeper ran)"
    )
    assert unpublished == len(during)
    assert recovered <= 30
    for invoice in every:
        assert_returned_exactly_once(invoice)
    assert SmsMessage.objects.count() == len(every)
    call_command("check_ledger")
