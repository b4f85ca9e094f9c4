"""End to end with a real Celery worker process on the Redis broker."""

import pytest
from django.conf import settings
from django.db import transaction

from core.correlation import correlation_id_reset, correlation_id_set
from core.models import OutboxMessage
from invoices.models import TaxSandboxOperation
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnState
from tests.factories import CustomerFactory, UserFactory, issue_invoice
from tests.processes import celery_publishing_to, wait_for
from tests.returns_helpers import assert_returned_exactly_once, log_paper, submit

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def celery_on_redis(private_redis):
    """Point this process's Celery at a Redis server of this test's own (not eager): no other
    test's worker can take its messages, and none of theirs reach its worker."""
    with celery_publishing_to(private_redis.url):
        yield private_redis.url


@pytest.fixture
def worker(celery_on_redis, start_worker):
    return start_worker(broker_url=celery_on_redis, name="e2e")


def test_r6_a_transient_tax_system_failure_is_retried_by_the_worker_and_the_answer_polled(
    celery_on_redis, start_worker
):
    """The sandbox refuses the first two submissions as busy and answers one second after
    accepting: the submit task retries with backoff, the poll task asks until it is done."""
    worker = start_worker(
        broker_url=celery_on_redis,
        name="tax-retry",
        env={"TAX_SANDBOX_FAIL": "transient:2", "TAX_SANDBOX_DELAY_SECONDS": "1"},
    )
    invoice = issue_invoice(CustomerFactory())
    rr = submit(invoice)
    log_paper(invoice, UserFactory(username="finance-tax-retry", is_staff=True))

    wait_for(lambda: completed_and_texted(rr), timeout=90, what="the return", processes=(worker,))
    assert_returned_exactly_once(invoice)
    assert TaxSandboxOperation.objects.get(serial=rr.tax_request.serial).attempts == 3
    # Each task's outbox row followed it through its retries and went when it finished.
    wait_for(
        lambda: not OutboxMessage.objects.exists(),
        timeout=10,
        what="the outbox to empty",
        processes=(worker,),
    )


def completed_and_texted(rr) -> bool:
    rr.refresh_from_db()
    sms = SmsMessage.objects.filter(
        related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED
    ).first()
    return rr.state == ReturnState.COMPLETED and sms is not None and sms.status == "sent"


def test_r4_r6_r7_r8_a_real_worker_on_redis_completes_the_return(worker):
    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    customer = CustomerFactory()
    invoice = issue_invoice(customer)
    finance = UserFactory(username="finance-e2e", is_staff=True)
    rr = submit(invoice)
    token = correlation_id_set("e2e-paper-logged")  # as the finance clerk's request would
    try:
        log_paper(invoice, finance)  # commits → the task goes to Redis → the worker runs it
    finally:
        correlation_id_reset(token)

    wait_for(lambda: completed_and_texted(rr), timeout=90, what="the return", processes=(worker,))
    assert_returned_exactly_once(invoice)
    # The id went web → worker (return_process_task) → worker (the tax tasks it enqueued) → SMS.
    sms = SmsMessage.objects.get(related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED)
    assert sms.correlation_id == "e2e-paper-logged"
    worker_log = worker.log_path.read_text(errors="replace")
    assert f"return {rr.pk}: " in worker_log
    requested = next(line for line in worker_log.splitlines() if f"return {rr.pk}: " in line)
    assert "e2e-paper-logged" in requested


def test_r8_an_sms_left_sending_is_settled_by_its_task_once_the_sending_window_has_passed(
    celery_on_redis, start_worker
):
    """A redelivered send finds the message *sending* (another run's answer was lost): the
    task comes back when the sending window (derived from the Twilio timeout) has passed and
    settles it by asking the provider, with no sweeper involved."""
    from datetime import timedelta

    from django.utils import timezone

    from notifications.services import sms_message_queue, sms_sending_window
    from notifications.tasks import sms_send_task

    worker = start_worker(
        broker_url=celery_on_redis, name="sending-window", env={"TWILIO_TIMEOUT_SECONDS": "3"}
    )
    wait_for(
        lambda: "ready." in worker.log_path.read_text(errors="replace"),
        timeout=60,
        what="the worker",
        processes=(worker,),
    )
    with transaction.atomic():
        sms = sms_message_queue(
            to="+8613800138000",
            body="Your return is complete.",
            purpose=SmsPurpose.RETURN_COMPLETED,
            idempotency_key="return:1:return_completed",
        )
        # Written so, its own task is published on commit and finds it mid-window.
        SmsMessage.objects.filter(pk=sms.pk).update(
            status="sending", attempts=1, updated_at=timezone.now() - timedelta(seconds=4)
        )
    window = timedelta(seconds=2 * 3 + 10)  # the worker's: TWILIO_TIMEOUT_SECONDS=3
    assert window < sms_sending_window()  # (this process keeps the default 10 s)

    wait_for(
        lambda: SmsMessage.objects.get(pk=sms.pk).status == "sent",
        timeout=60,
        what="the SMS to be settled after its sending window",
        processes=(worker,),
    )
    sms.refresh_from_db()
    log = worker.log_tail(100_000)
    assert f"{sms_send_task.name}[" in log
    assert " retry: Retry in " in log  # came back after the window, not at once
    assert sms.attempts == 2  # asked the provider (not there), then sent once
