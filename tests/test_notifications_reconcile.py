"""Messages that never got a final status are looked up at Twilio, in batches, by beat."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.backends import InMemorySmsBackend, ProviderStatus
from notifications.exceptions import SmsTransientError
from notifications.models import SmsMessage, SmsPendingStatusCallback, SmsPurpose, SmsStatus
from notifications.services import sms_pending_callbacks_purge, sms_status_reconcile
from notifications.tasks import sms_status_reconcile_task

pytestmark = pytest.mark.django_db

AFTER = timedelta(minutes=15)
FOR = timedelta(days=3)


def _sent(sms_outbox, *, ago: timedelta, twilio_status: str = "sent", code: str = "", n: int = 0):
    result = InMemorySmsBackend().send(to="+8613800138000", body=f"退回成功 {n}")
    sms_outbox[-1]["status"] = twilio_status
    sms_outbox[-1]["error_code"] = code
    return SmsMessage.objects.create(
        to="+8613800138000",
        body=f"退回成功 {n}",
        purpose=SmsPurpose.RETURN_COMPLETED,
        idempotency_key=f"return:{n}:return_completed",
        status=SmsStatus.SENT,
        provider_id=result.provider_id,
        sent_at=timezone.now() - ago,
    )


def _reconcile(limit: int = 100) -> int:
    return sms_status_reconcile(older_than=AFTER, give_up_after=FOR, limit=limit)


class CountingBackend(InMemorySmsBackend):
    def __init__(self) -> None:
        self.asked: list[str] = []

    def fetch_status(self, *, provider_id: str) -> ProviderStatus | None:
        self.asked.append(provider_id)
        return super().fetch_status(provider_id=provider_id)


@pytest.fixture
def counting(monkeypatch) -> CountingBackend:
    backend = CountingBackend()
    monkeypatch.setattr("notifications.services.get_sms_backend", lambda: backend)
    return backend


def test_r8_a_sent_sms_without_a_final_status_is_updated_from_twilio(sms_outbox):
    delivered = _sent(sms_outbox, ago=timedelta(hours=1), twilio_status="delivered", n=1)
    undelivered = _sent(
        sms_outbox, ago=timedelta(hours=1), twilio_status="undelivered", code="30003", n=2
    )
    still_sent = _sent(sms_outbox, ago=timedelta(hours=1), twilio_status="sent", n=3)

    assert _reconcile() == 3

    delivered.refresh_from_db()
    undelivered.refresh_from_db()
    still_sent.refresh_from_db()
    assert delivered.status == SmsStatus.DELIVERED
    assert delivered.delivered_at is not None
    assert (undelivered.status, undelivered.error_code) == (SmsStatus.FAILED, "30003")
    assert still_sent.status == SmsStatus.SENT
    assert still_sent.status_checked_at is not None


def test_r8_reconciliation_asks_only_about_messages_due_and_in_batches(sms_outbox, counting):
    recent = _sent(sms_outbox, ago=timedelta(minutes=2), n=1)  # its callback may still come
    too_old = _sent(sms_outbox, ago=timedelta(days=4), n=2)  # given up on
    due = [_sent(sms_outbox, ago=timedelta(hours=1 + i), n=10 + i) for i in range(3)]

    assert _reconcile(limit=2) == 2
    assert _reconcile(limit=2) == 1  # the rest; the first two were checked just now
    assert _reconcile(limit=2) == 0  # nothing is asked about twice within AFTER

    assert sorted(counting.asked) == sorted(sms.provider_id for sms in due)
    assert recent.provider_id not in counting.asked
    assert too_old.provider_id not in counting.asked


def test_r8_a_checked_message_is_asked_about_again_after_the_interval(sms_outbox, counting):
    sms = _sent(sms_outbox, ago=timedelta(hours=2), n=1)
    _reconcile()
    SmsMessage.objects.filter(pk=sms.pk).update(status_checked_at=timezone.now() - AFTER * 2)

    _reconcile()

    assert counting.asked == [sms.provider_id, sms.provider_id]


def test_r8_final_statuses_are_never_asked_about(sms_outbox, counting):
    sms = _sent(sms_outbox, ago=timedelta(hours=1), n=1)
    SmsMessage.objects.filter(pk=sms.pk).update(status=SmsStatus.DELIVERED)

    assert _reconcile() == 0
    assert counting.asked == []


def test_r8_reconciliation_stops_and_changes_nothing_while_twilio_cannot_answer(
    sms_outbox, monkeypatch
):
    sms = _sent(sms_outbox, ago=timedelta(hours=1), twilio_status="delivered", n=1)

    def down(self, **kwargs):
        raise SmsTransientError("Twilio answered HTTP 503")

    monkeypatch.setattr(InMemorySmsBackend, "fetch_status", down)

    assert _reconcile() == 0
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT
    assert sms.status_checked_at is None  # asked again next time


def test_r8_the_beat_task_reconciles_and_purges_callbacks_no_message_ever_claimed(
    sms_outbox, settings
):
    sms = _sent(sms_outbox, ago=timedelta(hours=1), twilio_status="delivered", n=1)
    stale = SmsPendingStatusCallback.objects.create(provider_id="SM" + "a" * 32, status="sent")
    fresh = SmsPendingStatusCallback.objects.create(provider_id="SM" + "b" * 32, status="sent")
    SmsPendingStatusCallback.objects.filter(pk=stale.pk).update(
        received_at=timezone.now() - timedelta(seconds=settings.SMS_PENDING_CALLBACK_KEEP_SECONDS)
    )

    sms_status_reconcile_task.delay()

    sms.refresh_from_db()
    assert sms.status == SmsStatus.DELIVERED
    assert list(SmsPendingStatusCallback.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_r8_purging_pending_callbacks_keeps_the_recent_ones():
    SmsPendingStatusCallback.objects.create(provider_id="SM" + "c" * 32, status="sent")

    assert sms_pending_callbacks_purge(older_than=timedelta(hours=1)) == 0
    assert SmsPendingStatusCallback.objects.count() == 1
