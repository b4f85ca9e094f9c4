"""The task outbox (core/outbox.py): a task is a row written with its change, published on
commit, published again by the relay while the broker is down or when the worker holding it
died; deleted when the task is done. Eager mode (development) is unchanged."""

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery import states
from django.db import OperationalError, transaction
from django.utils import timezone

from core import outbox
from core.enqueue import enqueue, enqueue_on_commit
from core.logging import RepeatedLinesFilter
from core.models import OutboxMessage
from notifications.services import sms_sending_window
from returns.tasks import return_process_task, return_tax_poll_task
from tests.processes import celery_publishing_to

QUEUE = "returns"  # where returns.tasks.* are routed


@pytest.fixture
def broker(private_redis):
    """This process publishes to a Redis server of the test's own (not eager): the outbox is on."""
    with celery_publishing_to(private_redis.url):
        outbox._publishing_paused_until = 0.0
        yield private_redis
    outbox._publishing_paused_until = 0.0


def _headers_in_queue(redis_server) -> list[dict]:
    import json

    import redis

    raw = redis.Redis.from_url(redis_server.url).lrange(QUEUE, 0, -1)
    return [json.loads(message)["headers"] for message in raw]


def test_eager_mode_runs_the_task_on_commit_and_writes_no_outbox_row(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    ran = []
    monkeypatch.setattr(return_process_task, "delay", lambda *a: ran.append(a))
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit(return_process_task, 5)
        assert ran == []  # not before commit
    assert ran == [(5,)]
    assert not OutboxMessage.objects.exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_in_a_rolled_back_transaction_leaves_no_row_and_publishes_nothing(
    broker,
):
    written = []

    def change_that_fails() -> None:
        with transaction.atomic():
            enqueue_on_commit(return_process_task, 5)
            written.append(OutboxMessage.objects.count())  # in the change's transaction
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert written == [1]
    assert not OutboxMessage.objects.exists()
    assert broker.queued(QUEUE) == 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_on_commit_the_row_is_published_with_its_id_in_a_header_and_marked_published(broker):
    with transaction.atomic():
        enqueue_on_commit(return_process_task, 5)
        assert broker.queued(QUEUE) == 0  # nothing before the commit
    row = OutboxMessage.objects.get()
    assert (row.task, row.args) == (return_process_task.name, [5])
    assert row.published_at is not None
    assert row.publish_count == 1
    # No worker has taken it: published again only after the (long) queued lease.
    assert row.lease_until > timezone.now() + timedelta(minutes=9)
    assert [h["outbox_id"] for h in _headers_in_queue(broker)] == [row.pk]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_countdown_is_kept_on_the_row_and_in_the_message(broker):
    assert enqueue(return_tax_poll_task, 9, countdown=30) is True
    row = OutboxMessage.objects.get()
    assert timedelta(seconds=25) < row.run_at - timezone.now() <= timedelta(seconds=30)
    [headers] = _headers_in_queue(broker)
    assert headers["eta"] is not None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_broker_down_at_commit_leaves_the_row_unpublished_and_the_relay_publishes_it_later(
    broker, settings, caplog
):
    settings.OUTBOX_PUBLISH_GRACE_SECONDS = 0
    broker.stop()
    caplog.set_level(logging.WARNING, logger="core.outbox")
    for return_id in (1, 2, 3):
        with transaction.atomic():
            enqueue_on_commit(return_process_task, return_id)
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 3
    # One warning for the outage, not one per task (and later commits do not wait for it).
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1

    assert outbox.outbox_relay_once() == (0, 0)  # still down: nothing marked
    broker.start()
    assert outbox.outbox_relay_once() == (3, 0)
    assert not OutboxMessage.objects.filter(published_at__isnull=True).exists()
    assert broker.queued(QUEUE) == 3
    assert outbox.outbox_relay_once() == (0, 0)  # published once, not at every round


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_relay_publishes_again_a_row_whose_lease_ran_out_and_not_one_still_held(broker):
    with transaction.atomic():
        enqueue_on_commit(return_process_task, 1)
        enqueue_on_commit(return_process_task, 2)
    lost, held = OutboxMessage.objects.order_by("pk")
    OutboxMessage.objects.filter(pk=lost.pk).update(lease_until=timezone.now())
    OutboxMessage.objects.filter(pk=held.pk).update(
        lease_until=timezone.now() + timedelta(seconds=10)
    )

    assert outbox.outbox_relay_once() == (0, 1)
    lost.refresh_from_db()
    assert lost.publish_count == 2
    assert [h["outbox_id"] for h in _headers_in_queue(broker)].count(lost.pk) == 2


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_restarted_broker_is_noticed_and_every_unfinished_row_is_due_again(broker):
    with transaction.atomic():
        enqueue_on_commit(return_process_task, 1)
    before = outbox.broker_identity()
    broker.stop()
    broker.start()  # without persistence: the message is gone
    assert broker.queued(QUEUE) == 0
    after = outbox.broker_identity()
    assert before
    assert after
    assert before != after

    assert outbox.outbox_broker_restarted() == 1
    assert outbox.outbox_relay_once() == (0, 1)
    assert broker.queued(QUEUE) == 1


def _finished(outbox_id: int, state: str, retval=None) -> None:
    task = SimpleNamespace(request=SimpleNamespace(is_eager=False, outbox_id=outbox_id))
    outbox.task_postrun_settle_outbox(task=task, state=state, retval=retval)


@pytest.mark.django_db
def test_a_finished_task_deletes_its_row_a_retry_or_a_database_give_up_keeps_it():
    rows = [
        OutboxMessage.objects.create(task="t", args=[n], run_at=timezone.now()) for n in range(4)
    ]
    _finished(rows[0].pk, states.SUCCESS)
    _finished(rows[1].pk, states.RETRY)
    _finished(rows[2].pk, states.FAILURE, OperationalError("server closed the connection"))
    _finished(rows[3].pk, states.FAILURE, ZeroDivisionError("a bug"))  # failed for good
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {rows[1].pk, rows[2].pk}


@pytest.mark.django_db
def test_the_worker_keeps_the_lease_of_what_it_holds_and_marks_it_published(settings, monkeypatch):
    settings.OUTBOX_LEASE_SECONDS = 15
    held = OutboxMessage.objects.create(task="t", args=[1], run_at=timezone.now())
    other = OutboxMessage.objects.create(task="t", args=[2], run_at=timezone.now())
    monkeypatch.setattr(outbox, "_held_outbox_ids", lambda: {held.pk})

    assert outbox.OutboxLeaseKeeper().renew() == 1

    held.refresh_from_db()
    other.refresh_from_db()
    assert held.published_at is not None  # its publisher's mark can no longer overwrite it
    assert timedelta(seconds=13) < held.lease_until - timezone.now() <= timedelta(seconds=15)
    assert other.lease_until is None


def test_the_sms_sending_window_is_derived_from_the_twilio_timeout(settings):
    settings.TWILIO_TIMEOUT_SECONDS = 10
    assert sms_sending_window() == timedelta(seconds=30)  # connect + answer + 10 s margin
    settings.TWILIO_TIMEOUT_SECONDS = 4
    assert sms_sending_window() == timedelta(seconds=18)


def _record(name: str, msg: str, args, level=logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_celery_retry_and_reconnection_lines_are_collapsed_one_per_window():
    now = [0.0]
    lines = RepeatedLinesFilter(window=60, clock=lambda: now[0])
    retry = "Task %(name)s[%(id)s] retry: %(exc)s"
    shown = [
        lines.filter(_record("celery.app.trace", retry, {"name": "sms", "id": n, "exc": "x"}))
        for n in range(100)
    ]
    assert shown.count(True) == 1
    other_task = _record("celery.app.trace", retry, {"name": "returns", "id": 1, "exc": "x"})
    assert lines.filter(other_task)  # another task's retries have their own line
    succeeded = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"
    assert all(
        lines.filter(_record("celery.app.trace", succeeded, {"name": "sms", "id": n}))
        for n in range(3)
    )
    cannot = "consumer: Cannot connect to %s: %s.\n%s"
    args = ("redis://", "refused", "Trying again")
    consumer = "celery.worker.consumer.consumer"
    assert lines.filter(_record(consumer, cannot, args, logging.ERROR))
    assert not lines.filter(_record(consumer, cannot, args, logging.ERROR))

    now[0] = 61.0
    record = _record("celery.app.trace", retry, {"name": "sms", "id": 101, "exc": "x"})
    assert lines.filter(record)
    assert "[99 more like this in the last 60 s not shown]" in record.getMessage()
    assert record.getMessage().startswith("Task sms[101] retry: x")


def test_the_logging_configuration_collapses_repeated_lines(settings):
    assert "repeated_lines" in settings.LOGGING["handlers"]["console"]["filters"]
