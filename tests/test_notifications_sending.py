"""R8: one SMS per event, sent after commit, retried on transient errors, failures recorded."""

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from notifications.backends import BaseSmsBackend, InMemorySmsBackend, SendResult
from notifications.exceptions import (
    SmsOutcomeUnknown,
    SmsPermanentError,
    SmsProviderUnavailable,
    SmsTransientError,
)
from notifications.models import SmsMessage, SmsPendingStatusCallback, SmsPurpose, SmsStatus
from notifications.services import (
    sms_mark_failed,
    sms_message_queue,
    sms_resend,
    sms_send,
    sms_status_update,
)
from notifications.tasks import sms_send_task
from tests.factories import staff_actor

pytestmark = pytest.mark.django_db

MOBILE = "+8613800138000"
BODY = "发票 12345678 退回成功。您可以重新申请开票。"


def _queue(key: str = "return:1:return_completed", **overrides: object) -> SmsMessage:
    fields = {
        "to": MOBILE,
        "body": BODY,
        "purpose": SmsPurpose.RETURN_COMPLETED,
        "idempotency_key": key,
        "related_return_id": 1,
    }
    return sms_message_queue(**(fields | overrides))


class ScriptedBackend(BaseSmsBackend):
    """Answers each send with the next scripted exception; succeeds once the script is done."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return SendResult(provider_id=f"SM{self.calls:032x}", status="queued")


@pytest.fixture
def use_backend(monkeypatch: pytest.MonkeyPatch) -> Callable[[BaseSmsBackend], BaseSmsBackend]:
    def install(backend: BaseSmsBackend) -> BaseSmsBackend:
        monkeypatch.setattr("notifications.services.get_sms_backend", lambda: backend)
        return backend

    return install


# --- queuing -------------------------------------------------------------------------------


def test_r8_queuing_an_sms_sends_nothing_before_commit_and_enqueues_one_send(
    django_capture_on_commit_callbacks, sms_outbox
):
    with django_capture_on_commit_callbacks() as callbacks:
        sms = _queue()

    assert len(callbacks) == 1
    assert sms.status == SmsStatus.QUEUED
    assert sms.related_return_id == 1
    assert sms_outbox == []


def test_r8_after_commit_the_queued_sms_is_sent_once(
    django_capture_on_commit_callbacks, sms_outbox
):
    with django_capture_on_commit_callbacks(execute=True):
        sms = _queue()

    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT
    assert [(m["to"], m["body"]) for m in sms_outbox] == [(MOBILE, BODY)]


def test_r8_queuing_twice_with_one_key_returns_the_first_sms_and_enqueues_nothing(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as first_callbacks:
        first = _queue(key="return:5:return_completed")
    with django_capture_on_commit_callbacks() as second_callbacks:
        second = _queue(key="return:5:return_completed", body="a different text")

    assert second.pk == first.pk
    assert second.body == BODY
    assert len(first_callbacks) == 1
    assert second_callbacks == []
    assert SmsMessage.objects.count() == 1


def test_r8_a_rolled_back_caller_leaves_no_sms_and_sends_nothing(
    django_capture_on_commit_callbacks, sms_outbox
):
    def void_that_fails() -> None:
        with transaction.atomic():
            _queue()
            raise RuntimeError("the void failed")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        void_that_fails()

    assert callbacks == []
    assert SmsMessage.objects.count() == 0
    assert sms_outbox == []


def test_r8_queuing_refuses_a_number_that_is_not_e164():
    with pytest.raises(ValueError, match=r"E\.164"):
        _queue(to="13800138000")

    assert SmsMessage.objects.count() == 0


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_r8_two_concurrent_queue_calls_with_one_key_make_one_sms_and_one_send(sms_outbox):
    first_inserted = threading.Event()
    release_first = threading.Event()
    results: dict[str, SmsMessage] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = _queue(key="return:9:return_completed")
                first_inserted.set()
                release_first.wait(10)
        finally:
            connection.close()

    def second() -> None:
        try:
            first_inserted.wait(10)
            results["second"] = _queue(key="return:9:return_completed")
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    assert first_inserted.wait(10)
    deadline = time.monotonic() + 10
    while _lock_waiters() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _lock_waiters() == 1, "the second insert should wait on the unique index"
    release_first.set()
    for thread in threads:
        thread.join(10)

    assert results["second"].pk == results["first"].pk
    assert SmsMessage.objects.count() == 1
    assert len(sms_outbox) == 1


# --- sending ------------------------------------------------------------------------------


def test_r8_sending_stores_the_provider_id_and_a_second_send_sends_nothing(sms_outbox):
    sms = _queue()

    sent = sms_send(sms_message_id=sms.pk)
    again = sms_send(sms_message_id=sms.pk)

    assert sent.status == SmsStatus.SENT
    assert sent.provider_id == sms_outbox[0]["provider_id"]
    assert sent.sent_at is not None
    assert again.attempts == 1
    assert len(sms_outbox) == 1


def test_r8_the_status_callback_url_is_passed_when_the_site_has_a_public_url(settings, sms_outbox):
    settings.PUBLIC_BASE_URL = "https://portal.example.com/"
    sms_send(sms_message_id=_queue().pk)

    assert sms_outbox[0]["status_callback"] == (
        "https://portal.example.com/notifications/twilio/status/"
    )


def test_r8_no_status_callback_is_asked_for_without_a_public_url(settings, sms_outbox):
    settings.PUBLIC_BASE_URL = ""
    sms_send(sms_message_id=_queue().pk)

    assert sms_outbox[0]["status_callback"] is None


def test_r8_a_transient_error_puts_the_sms_back_in_the_queue_and_raises(use_backend):
    use_backend(ScriptedBackend(SmsTransientError("Twilio answered HTTP 503")))
    sms = _queue()

    with pytest.raises(SmsTransientError):
        sms_send(sms_message_id=sms.pk)

    sms.refresh_from_db()
    assert sms.status == SmsStatus.QUEUED
    assert sms.attempts == 1
    assert "503" in sms.error_message


def test_r8_a_permanent_error_fails_the_sms_with_the_providers_code_without_raising(use_backend):
    backend = use_backend(ScriptedBackend(SmsPermanentError("Invalid 'To'", code=21211)))
    sms = _queue()

    failed = sms_send(sms_message_id=sms.pk)
    sms_send(sms_message_id=sms.pk)

    assert failed.status == SmsStatus.FAILED
    assert failed.error_code == "21211"
    assert "Invalid 'To'" in failed.error_message
    assert failed.attempts == 1
    assert backend.calls == 1


def _sending_since(sms: SmsMessage, since: timedelta) -> None:
    SmsMessage.objects.filter(pk=sms.pk).update(
        status=SmsStatus.SENDING, attempts=1, updated_at=timezone.now() - since
    )


def test_r8_a_redelivered_send_leaves_an_sms_another_run_is_still_sending(sms_outbox):
    sms = _queue()
    _sending_since(sms, timedelta(seconds=5))

    returned = sms_send(sms_message_id=sms.pk)  # quietly: no retry burnt, nothing sent

    assert returned.status == SmsStatus.SENDING
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENDING
    assert sms.attempts == 1
    assert sms_outbox == []


def test_r8_an_sms_stuck_in_sending_that_never_reached_the_provider_is_sent_again(
    settings, sms_outbox
):
    sms = _queue()
    _sending_since(sms, timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 61))

    sent = sms_send(sms_message_id=sms.pk)

    assert sent.status == SmsStatus.SENT
    assert sent.attempts == 2
    assert len(sms_outbox) == 1


def test_r8_an_sms_stuck_in_sending_that_did_reach_the_provider_is_not_sent_twice(
    settings, sms_outbox
):
    sms = _queue()
    # The first attempt got through, then its worker died before recording it.
    first = sms_send(sms_message_id=sms.pk)
    _sending_since(sms, timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 61))

    settled = sms_send(sms_message_id=sms.pk)

    assert settled.status == SmsStatus.SENT
    assert settled.provider_id == first.provider_id
    assert settled.attempts == 1
    assert len(sms_outbox) == 1  # asked the provider instead of texting again


def test_r8_an_unknown_outcome_is_left_in_sending_for_reconciliation_not_retried(
    monkeypatch, sms_outbox
):
    from notifications import backends

    def timed_out(self, **kwargs):
        backends.outbox.append({"provider_id": "mem-late", **kwargs})  # it did get through
        raise SmsOutcomeUnknown("Twilio did not answer in time")

    monkeypatch.setattr(backends.InMemorySmsBackend, "send", timed_out)
    sms = sms_send(sms_message_id=_queue().pk)  # no exception: the task does not retry

    assert sms.status == SmsStatus.SENDING
    assert "did not answer" in sms.error_message
    assert len(sms_outbox) == 1


def test_r8_marking_failed_records_the_error_on_a_message_not_yet_sent():
    sms = _queue()

    failed = sms_mark_failed(sms_message_id=sms.pk, error="retries exhausted")

    assert failed.status == SmsStatus.FAILED
    assert failed.error_message == "retries exhausted"


def test_r8_marking_failed_leaves_a_sent_message_alone(sms_outbox):
    sms = sms_send(sms_message_id=_queue().pk)

    unchanged = sms_mark_failed(sms_message_id=sms.pk, error="late failure")

    assert unchanged.status == SmsStatus.SENT
    assert unchanged.error_message == ""


def test_r8_staff_resend_queues_a_failed_sms_again_and_sends_it_after_commit(
    django_capture_on_commit_callbacks, sms_outbox
):
    sms = sms_mark_failed(sms_message_id=_queue().pk, error="gave up")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        requeued = sms_resend(sms_message_id=sms.pk, actor=staff_actor())

    assert requeued.status == SmsStatus.QUEUED
    assert requeued.error_message == ""
    assert len(callbacks) == 1
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT
    assert len(sms_outbox) == 1


def test_r8_resend_is_a_no_op_for_an_sms_that_has_not_failed(
    django_capture_on_commit_callbacks, sms_outbox
):
    sms = sms_send(sms_message_id=_queue().pk)

    with django_capture_on_commit_callbacks() as callbacks:
        unchanged = sms_resend(sms_message_id=sms.pk, actor=staff_actor())

    assert unchanged.status == SmsStatus.SENT
    assert callbacks == []


# --- the task in eager mode ----------------------------------------------------------------


def test_r8_the_task_retries_transient_errors_until_the_sms_is_sent(
    use_backend, django_capture_on_commit_callbacks
):
    backend = use_backend(
        ScriptedBackend(SmsTransientError("HTTP 503"), SmsTransientError("timed out"))
    )

    with django_capture_on_commit_callbacks(execute=True):
        sms = _queue()

    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT
    assert sms.attempts == 3
    assert backend.calls == 3


def test_r8_when_retries_run_out_the_sms_is_recorded_failed_and_the_caller_is_unharmed(
    use_backend, django_capture_on_commit_callbacks
):
    backend = use_backend(ScriptedBackend(*[SmsTransientError("HTTP 503")] * 20))

    with django_capture_on_commit_callbacks(execute=True):
        sms = _queue()

    sms.refresh_from_db()
    assert sms.status == SmsStatus.FAILED
    assert sms.attempts == sms_send_task.max_retries + 1
    assert backend.calls == sms_send_task.max_retries + 1
    assert "Gave up" in sms.error_message
    assert "HTTP 503" in sms.error_message


def test_r8_an_unexpected_error_is_not_retried_but_recorded_as_failed(
    use_backend, django_capture_on_commit_callbacks
):
    backend = use_backend(ScriptedBackend(RuntimeError("bug in a backend")))

    with django_capture_on_commit_callbacks(execute=True):
        sms = _queue()

    sms.refresh_from_db()
    assert sms.status == SmsStatus.FAILED
    assert "RuntimeError: bug in a backend" in sms.error_message
    assert backend.calls == 1


def test_r8_a_permanent_error_through_the_task_is_not_retried(
    use_backend, django_capture_on_commit_callbacks
):
    backend = use_backend(ScriptedBackend(SmsPermanentError("Unsubscribed", code=21610)))

    with django_capture_on_commit_callbacks(execute=True):
        sms = _queue()

    sms.refresh_from_db()
    assert sms.status == SmsStatus.FAILED
    assert sms.error_code == "21610"
    assert sms.attempts == 1
    assert backend.calls == 1


def test_r8_running_the_task_again_for_a_sent_sms_sends_nothing(sms_outbox):
    sms = sms_send(sms_message_id=_queue().pk)

    sms_send_task.delay(sms.pk)

    sms.refresh_from_db()
    assert sms.attempts == 1
    assert len(sms_outbox) == 1


# --- database errors while sending (issue 15) -----------------------------------------------


@pytest.fixture(autouse=True)
def _no_outage_in_progress():
    """Each test starts without a database outage remembered by the send path's log limiter."""
    from notifications.tasks import database_outage

    database_outage.reset()
    yield
    database_outage.reset()


def _database_lost_once(monkeypatch: pytest.MonkeyPatch, target: str) -> list[str]:
    """Make ``notifications.services.<target>`` raise a terminated-connection error once."""
    import notifications.services as services

    real = getattr(services, target)
    raised: list[str] = []

    def flaky(**kwargs: object) -> object:
        if not raised:
            raised.append(target)
            raise OperationalError("terminating connection due to administrator command")
        return real(**kwargs)

    monkeypatch.setattr(services, target, flaky)
    return raised


def test_r8_a_database_error_after_twilio_accepted_records_the_sid_on_retry_and_sends_once(
    monkeypatch, django_capture_on_commit_callbacks, sms_outbox
):
    raised = _database_lost_once(monkeypatch, "sms_outcome_record")

    with django_capture_on_commit_callbacks(execute=True):
        sms = _queue()

    assert raised == ["sms_outcome_record"]  # the answer was lost once, then written
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT
    assert len(sms_outbox) == 1  # the retry wrote the answer it had; it did not send again
    assert sms.provider_id == sms_outbox[0]["provider_id"]
    assert sms.attempts == 1


def test_r8_a_database_error_before_the_send_is_retried_and_the_sms_sent_once(
    monkeypatch, django_capture_on_commit_callbacks, sms_outbox
):
    import notifications.services as services

    real_send = services.sms_send
    calls: list[int] = []

    def send_with_the_database_down_once(*, sms_message_id: int) -> SmsMessage:
        calls.append(sms_message_id)
        if len(calls) == 1:
            raise InterfaceError("connection already closed")
        return real_send(sms_message_id=sms_message_id)

    monkeypatch.setattr("notifications.tasks.sms_send", send_with_the_database_down_once)

    with django_capture_on_commit_callbacks(execute=True):
        sms = _queue()

    assert len(calls) == 2
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT
    assert len(sms_outbox) == 1


def test_r8_when_database_retries_run_out_the_sms_is_not_marked_failed(
    monkeypatch, django_capture_on_commit_callbacks, sms_outbox, caplog
):
    def database_down(*, sms_message_id: int) -> SmsMessage:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("notifications.tasks.sms_send", database_down)
    caplog.set_level(logging.DEBUG, logger="notifications")

    with django_capture_on_commit_callbacks(execute=True):
        sms = _queue()

    sms.refresh_from_db()
    assert sms.status == SmsStatus.QUEUED  # the sweeper sends it when the database is back
    assert sms.error_message == ""
    warnings = [
        r
        for r in caplog.records
        if r.name.startswith("notifications") and r.levelno >= logging.WARNING
    ]
    # One warning for the outage and one that the task gave up, not one per retry.
    assert len(warnings) == 2, [r.getMessage() for r in warnings]
    assert "database" in warnings[0].getMessage()
    assert "sweeper" in warnings[1].getMessage()


def test_r8_giving_up_on_a_message_that_no_longer_exists_logs_and_does_not_crash(caplog):
    caplog.set_level(logging.WARNING, logger="notifications")

    sms_send_task.on_failure(
        SmsMessage.DoesNotExist("gone"), "task-1", (987654,), {}, None
    )  # raises nothing

    assert any("987654" in r.getMessage() for r in caplog.records)


def test_r8_giving_up_while_the_database_is_still_down_does_not_crash(monkeypatch, caplog):
    sms = _queue()

    def down(**kwargs: object) -> None:
        raise OperationalError("the database system is starting up")

    monkeypatch.setattr("notifications.tasks.sms_settle_after_giving_up", down)
    caplog.set_level(logging.WARNING, logger="notifications")

    sms_send_task.on_failure(RuntimeError("bug"), "task-2", (sms.pk,), {}, None)

    assert any(str(sms.pk) in r.getMessage() for r in caplog.records)


def test_r8_marking_failed_leaves_a_message_that_may_have_reached_the_provider_alone():
    sms = _queue()
    _sending_since(sms, timedelta(seconds=5))

    unchanged = sms_mark_failed(sms_message_id=sms.pk, error="gave up")

    assert unchanged is not None
    assert unchanged.status == SmsStatus.SENDING


class SendsThenCrashes(BaseSmsBackend):
    """The HTTP call goes out (the message is in the outbox), then our code fails."""

    def __init__(self) -> None:
        self.memory = InMemorySmsBackend()

    def find_sent(self, **kwargs):
        return self.memory.find_sent(**kwargs)

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        self.memory.send(to=to, body=body, status_callback=status_callback)
        raise RuntimeError("bug after the request went out")


def test_r8_an_unexpected_error_after_the_message_reached_twilio_records_it_sent_not_failed(
    use_backend, django_capture_on_commit_callbacks, sms_outbox
):
    use_backend(SendsThenCrashes())

    with django_capture_on_commit_callbacks(execute=True):
        sms = _queue()

    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT  # found at the provider by the look-up
    assert sms.provider_id == sms_outbox[0]["provider_id"]
    assert len(sms_outbox) == 1


class CannotLookUp(ScriptedBackend):
    def find_sent(self, **kwargs):
        raise SmsTransientError("Twilio unreachable")


def test_r8_an_unexpected_error_while_sending_stays_sending_when_twilio_cannot_be_asked(
    use_backend, django_capture_on_commit_callbacks
):
    use_backend(CannotLookUp(RuntimeError("bug in a backend")))

    with django_capture_on_commit_callbacks(execute=True):
        sms = _queue()

    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENDING  # the sweeper asks again later; never "failed"


# --- staff resend asks the provider first (issue 15) ----------------------------------------


def test_r8_resend_of_a_failed_sms_that_had_reached_twilio_records_it_and_sends_nothing(
    django_capture_on_commit_callbacks, sms_outbox
):
    sms = _queue()
    # Twilio accepted it, then the answer was lost and the message was recorded failed (the
    # false "failed" of issue 15).
    InMemorySmsBackend().send(to=sms.to, body=sms.body)
    SmsMessage.objects.filter(pk=sms.pk).update(status=SmsStatus.FAILED, error_message="gave up")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        settled = sms_resend(sms_message_id=sms.pk, actor=staff_actor())

    assert callbacks == []  # nothing enqueued
    assert settled.status == SmsStatus.SENT
    assert settled.provider_id == sms_outbox[0]["provider_id"]
    assert settled.error_message == ""
    assert len(sms_outbox) == 1  # the customer is not texted twice


def test_r8_resend_records_the_status_twilio_has_for_the_message_it_found(sms_outbox):
    sms = _queue()
    InMemorySmsBackend().send(to=sms.to, body=sms.body)
    sms_outbox[0]["status"] = "delivered"
    SmsMessage.objects.filter(pk=sms.pk).update(status=SmsStatus.FAILED)

    settled = sms_resend(sms_message_id=sms.pk, actor=staff_actor())

    assert settled.status == SmsStatus.DELIVERED
    assert settled.delivered_at is not None


def test_r8_resend_sends_again_a_message_twilio_itself_reported_undelivered(
    django_capture_on_commit_callbacks, sms_outbox
):
    sms = sms_send(sms_message_id=_queue().pk)
    sms_outbox[0]["status"] = "undelivered"
    sms_status_update(provider_id=sms.provider_id, status="undelivered", error_code="30003")

    with django_capture_on_commit_callbacks(execute=True):
        resent = sms_resend(sms_message_id=sms.pk, actor=staff_actor())

    assert resent.status == SmsStatus.QUEUED
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT
    assert len(sms_outbox) == 2
    assert sms.provider_id == sms_outbox[1]["provider_id"]


def test_r8_resend_refuses_while_twilio_cannot_be_asked_and_leaves_the_sms_failed(
    use_backend, django_capture_on_commit_callbacks
):
    use_backend(CannotLookUp())
    sms = sms_mark_failed(sms_message_id=_queue().pk, error="gave up")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(SmsProviderUnavailable, match="try again"),
    ):
        sms_resend(sms_message_id=sms.pk, actor=staff_actor())

    assert callbacks == []
    sms.refresh_from_db()
    assert sms.status == SmsStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_r8_a_callback_racing_the_write_of_its_sid_is_applied_not_lost():
    """The writer has saved the SID (and looked for early callbacks: none) but not committed;
    the callback cannot see the SID yet. Without ordering, it would be stored as pending after
    the writer looked, and never applied. The per-SID lock makes it wait and then apply."""
    from notifications.services import sms_outcome_record

    sms = _queue(key="return:11:return_completed")
    SmsMessage.objects.filter(pk=sms.pk).update(status=SmsStatus.SENDING)
    sid = "SM" + "0123456789abcdef" * 2
    written = threading.Event()
    commit = threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                sms_outcome_record(sms_message_id=sms.pk, status=SmsStatus.SENT, provider_id=sid)
                written.set()
                commit.wait(10)
        finally:
            connection.close()

    def callback() -> None:
        try:
            written.wait(10)
            sms_status_update(provider_id=sid, status="failed", error_code="30008")
        finally:
            connection.close()

    threads = [threading.Thread(target=writer), threading.Thread(target=callback)]
    for thread in threads:
        thread.start()
    assert written.wait(10)
    deadline = time.monotonic() + 10
    while _lock_waiters() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _lock_waiters() == 1, "the callback should wait for the writer's commit"
    commit.set()
    for thread in threads:
        thread.join(10)

    sms.refresh_from_db()
    assert (sms.status, sms.error_code) == (SmsStatus.FAILED, "30008")
    assert not SmsPendingStatusCallback.objects.exists()
