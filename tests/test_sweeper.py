"""Exactly once over at-least-once: a broker outage at commit never fails committed work, and
the sweeper re-enqueues what lost its task (R2, R6-R8)."""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from config.celery import app as celery_app
from core.enqueue import enqueue, enqueue_on_commit
from invoices.models import InvoiceState
from notifications.models import SmsMessage, SmsPurpose, SmsStatus
from notifications.services import sms_message_queue, sms_requeue_stuck
from notifications.tasks import sms_send_task
from returns.models import ReturnRequest, ReturnState
from returns.services import returns_requeue_stuck
from returns.tasks import return_process_task
from tests.returns_helpers import log_paper, submit

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=1)


def _broker_down(*args, **kwargs):
    raise BrokerError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")


@pytest.fixture
def published(monkeypatch):
    """Record what would be published instead of running it (as if a worker were elsewhere)."""
    calls: list[tuple[str, tuple]] = []
    for task in (return_process_task, sms_send_task):
        monkeypatch.setattr(task, "delay", lambda *a, _name=task.name: calls.append((_name, a)))
    return calls


def _processing_return(invoice, finance_user, django_capture_on_commit_callbacks, published):
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    published.clear()
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert rr.state == ReturnState.PROCESSING
    return rr


def _age(model, pk: int, by: timedelta = LONG_AGO) -> None:
    model.objects.filter(pk=pk).update(updated_at=timezone.now() - by)


# --- enqueue_on_commit -----------------------------------------------------------------------


def test_r8_a_broker_outage_at_commit_leaves_the_logged_paper_committed_and_logs_it(
    invoice, finance_user, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    submit(invoice)
    monkeypatch.setattr(return_process_task, "delay", _broker_down)
    monkeypatch.setattr(sms_send_task, "delay", _broker_down)
    caplog.set_level(logging.ERROR, logger="core.enqueue")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        log_paper(invoice, finance_user)  # would raise into the request without the helper
    assert len(callbacks) == 1  # the processing task (no "received" SMS: it completes at once)
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert rr.state == ReturnState.PROCESSING
    assert not SmsMessage.objects.filter(related_return_id=rr.pk).exists()
    assert sum("the sweeper will retry" in r.getMessage() for r in caplog.records) == 1


def test_r8_enqueue_reports_whether_the_broker_took_the_task(monkeypatch):
    calls = []
    monkeypatch.setattr(return_process_task, "delay", lambda *a: calls.append(a))
    assert enqueue(return_process_task, 7) is True
    assert calls == [(7,)]
    monkeypatch.setattr(return_process_task, "delay", _broker_down)
    assert enqueue(return_process_task, 7) is False


def test_r8_enqueue_lets_errors_other_than_the_brokers_through(monkeypatch):
    """Eager mode runs the task inside delay(): its bugs must not be hidden as an outage."""

    def bug(*args):
        raise ZeroDivisionError("a bug in the task")

    monkeypatch.setattr(return_process_task, "delay", bug)
    with pytest.raises(ZeroDivisionError):
        enqueue(return_process_task, 7)


def test_r8_enqueue_on_commit_publishes_nothing_before_commit(
    published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enqueue_on_commit(return_process_task, 3)
    assert published == []
    callbacks[0]()
    assert published == [(return_process_task.name, (3,))]


# --- the sweeper: returns --------------------------------------------------------------------


def test_r6_the_sweeper_re_enqueues_a_return_processing_for_too_long(
    invoice, finance_user, django_capture_on_commit_callbacks, published
):
    rr = _processing_return(invoice, finance_user, django_capture_on_commit_callbacks, published)
    _age(ReturnRequest, rr.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert returns_requeue_stuck(older_than=timedelta(minutes=2)) == [rr.pk]
    assert published == [(return_process_task.name, (rr.pk,))]
    rr.refresh_from_db()
    assert rr.updated_at > timezone.now() - timedelta(minutes=1)  # not swept again at once
    with django_capture_on_commit_callbacks(execute=True):
        assert returns_requeue_stuck(older_than=timedelta(minutes=2)) == []


def test_r6_the_sweeper_leaves_a_return_that_just_started_processing(
    invoice, finance_user, django_capture_on_commit_callbacks, published
):
    _processing_return(invoice, finance_user, django_capture_on_commit_callbacks, published)
    with django_capture_on_commit_callbacks(execute=True):
        assert returns_requeue_stuck(older_than=timedelta(minutes=2)) == []
    assert published == []


def test_r6_the_sweeper_ignores_returns_that_are_not_processing(invoice, finance_user):
    rr = submit(invoice)
    _age(ReturnRequest, rr.pk)
    assert returns_requeue_stuck(older_than=timedelta(minutes=2)) == []


def test_r6_r7_r8_a_swept_return_is_processed_once_even_if_its_first_task_arrives_too(
    invoice, finance_user, django_capture_on_commit_callbacks, published, monkeypatch
):
    rr = _processing_return(invoice, finance_user, django_capture_on_commit_callbacks, published)
    _age(ReturnRequest, rr.pk)
    monkeypatch.undo()  # eager tasks run again: the sweep's task completes the return
    with django_capture_on_commit_callbacks(execute=True):
        returns_requeue_stuck(older_than=timedelta(minutes=2))
    return_process_task.delay(rr.pk)  # the "lost" first message shows up after all
    rr.refresh_from_db()
    invoice.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    assert invoice.state == InvoiceState.VOIDED
    assert (
        SmsMessage.objects.filter(
            related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED
        ).count()
        == 1
    )


# --- the sweeper: SMS ------------------------------------------------------------------------


def _sms(key: str, django_capture_on_commit_callbacks) -> SmsMessage:
    with django_capture_on_commit_callbacks(execute=True):
        return sms_message_queue(
            to="+8613800138000",
            body="发票 12345678 已退回。",
            purpose=SmsPurpose.RETURN_COMPLETED,
            idempotency_key=key,
        )


def test_r8_the_sweeper_re_enqueues_an_sms_queued_for_too_long_and_only_that_one(
    published, django_capture_on_commit_callbacks
):
    old = _sms("old", django_capture_on_commit_callbacks)
    fresh = _sms("fresh", django_capture_on_commit_callbacks)
    sent = _sms("sent", django_capture_on_commit_callbacks)
    SmsMessage.objects.filter(pk=sent.pk).update(status=SmsStatus.SENT, provider_id="SM1")
    _age(SmsMessage, old.pk)
    _age(SmsMessage, sent.pk)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert sms_requeue_stuck(older_than=timedelta(minutes=15)) == [old.pk]
    assert published == [(sms_send_task.name, (old.pk,))]
    assert fresh.pk not in [args[0] for _name, args in published]


def test_r8_the_sweeper_re_enqueues_an_sms_left_sending_by_a_dead_run_without_hiding_it(
    published, django_capture_on_commit_callbacks
):
    sms = _sms("dead-run", django_capture_on_commit_callbacks)
    SmsMessage.objects.filter(pk=sms.pk).update(status=SmsStatus.SENDING)
    dead_since = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 3600)
    SmsMessage.objects.filter(pk=sms.pk).update(updated_at=dead_since)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert sms_requeue_stuck(older_than=timedelta(minutes=15)) == [sms.pk]
    sms.refresh_from_db()
    assert sms.updated_at == dead_since  # sms_send must still see that the earlier run is dead


def test_r8_the_sweeper_leaves_an_sms_another_run_may_still_be_sending(
    published, django_capture_on_commit_callbacks
):
    sms = _sms("live-run", django_capture_on_commit_callbacks)
    SmsMessage.objects.filter(pk=sms.pk).update(status=SmsStatus.SENDING)
    published.clear()
    assert sms_requeue_stuck(older_than=timedelta(0)) == []


def test_r8_a_queued_sms_awaiting_its_longest_retry_is_not_swept():
    """The queued threshold exceeds the send task's longest backoff (retry_backoff_max), and
    its longest backoff after a database error."""
    from notifications.tasks import DATABASE_RETRY_BACKOFF_MAX

    assert sms_send_task.retry_backoff_max < settings.SMS_QUEUED_REQUEUE_AFTER_SECONDS
    assert DATABASE_RETRY_BACKOFF_MAX < settings.SMS_QUEUED_REQUEUE_AFTER_SECONDS


# --- the schedule ----------------------------------------------------------------------------


def test_r8_beat_runs_both_sweepers_and_the_sms_status_reconciliation_on_registered_tasks():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled == {
        "returns.tasks.returns_requeue_stuck_task",
        "notifications.tasks.sms_requeue_stuck_task",
        "notifications.tasks.sms_status_reconcile_task",
        "returns.tasks.returns_chase_paper_task",
    }
    assert scheduled <= set(celery_app.tasks)
    assert celery_app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE
