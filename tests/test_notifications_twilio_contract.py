"""The real twilio SDK against a Prism mock that validates requests with Twilio's own OpenAPI.

If our request were malformed (wrong path, missing auth, a parameter Twilio does not accept),
the mock would refuse it and these tests would fail.
"""

import re
from collections.abc import Callable

import pytest
from twilio.http.response import Response

from notifications.backends import TwilioApiHttpClient, TwilioSmsBackend
from notifications.exceptions import SmsPermanentError, SmsTransientError
from notifications.models import SmsMessage, SmsPurpose, SmsStatus
from notifications.services import sms_message_queue, sms_send
from notifications.tasks import sms_send_task
from tests.factories import staff_actor

pytestmark = [pytest.mark.django_db, pytest.mark.twilio_mock]

MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")


class DropParameterClient(TwilioApiHttpClient):
    """Sends the request without one form parameter, to prove the mock validates requests."""

    def __init__(self, *, drop: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.drop = drop
        self.responses: list[Response] = []

    def request(self, method, url, params=None, data=None, headers=None, **kwargs):
        data = {k: v for k, v in (data or {}).items() if k != self.drop}
        response = super().request(method, url, params=params, data=data, headers=headers, **kwargs)
        self.responses.append(response)
        return response


@pytest.fixture
def backend_with(monkeypatch, twilio) -> Callable[..., TwilioSmsBackend]:
    """Route sms_send through a Twilio backend whose HTTP client the test configures."""

    def install(client_class: type[TwilioApiHttpClient] = TwilioApiHttpClient, **client_kwargs):
        backend = TwilioSmsBackend(
            http_client=client_class(api_base=twilio, timeout=10, **client_kwargs)
        )
        monkeypatch.setattr("notifications.services.get_sms_backend", lambda: backend)
        return backend

    return install


def _queue_and_commit(django_capture_on_commit_callbacks) -> SmsMessage:
    with django_capture_on_commit_callbacks(execute=True):
        sms = sms_message_queue(
            to="+8613800138000",
            body="发票 12345678 退回成功。您可以重新申请开票。",
            purpose=SmsPurpose.RETURN_COMPLETED,
            idempotency_key="return:1:return_completed",
            related_return_id=1,
        )
    sms.refresh_from_db()
    return sms


def test_r8_twilio_accepts_our_message_and_its_sid_is_stored(
    twilio, django_capture_on_commit_callbacks
):
    sms = _queue_and_commit(django_capture_on_commit_callbacks)

    assert sms.status == SmsStatus.SENT
    assert MESSAGE_SID.match(sms.provider_id)
    assert sms.attempts == 1
    assert sms.error_message == ""


def test_r8_twilio_accepts_a_message_sent_through_a_messaging_service(twilio, settings):
    settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "0123456789abcdef" * 2

    result = TwilioSmsBackend().send(
        to="+8613800138000",
        body="退回成功",
        status_callback="https://portal.example.com/notifications/twilio/status/",
    )

    assert MESSAGE_SID.match(result.provider_id)
    assert result.status == "queued"


def test_r8_the_mock_refuses_a_request_without_to_so_a_malformed_request_would_fail(twilio):
    client = DropParameterClient(drop="To", api_base=twilio, timeout=10)
    backend = TwilioSmsBackend(http_client=client)

    with pytest.raises(SmsPermanentError, match="HTTP 400"):
        backend.send(to="+8613800138000", body="退回成功")

    # Prism names the rule the request broke; it is Twilio's description, not our Prefer header.
    violations = client.responses[-1].headers["sl-violations"]
    assert "Request body must have required property 'To'" in violations


def test_r8_a_twilio_400_fails_the_sms_with_twilios_error_code_without_retrying(
    backend_with, django_capture_on_commit_callbacks
):
    backend_with(headers={"Prefer": "code=400"})

    sms = _queue_and_commit(django_capture_on_commit_callbacks)

    assert sms.status == SmsStatus.FAILED
    assert sms.error_code == "21211"
    assert "Invalid 'To' Phone Number" in sms.error_message
    assert sms.attempts == 1
    assert sms.provider_id == ""


def test_r8_a_twilio_500_puts_the_sms_back_in_the_queue_for_a_retry(backend_with, twilio):
    backend_with(headers={"Prefer": "code=500"})
    sms = SmsMessage.objects.create(
        to="+8613800138000",
        body="退回成功",
        purpose=SmsPurpose.RETURN_COMPLETED,
        idempotency_key="return:2:return_completed",
    )

    with pytest.raises(SmsTransientError, match="HTTP 500"):
        sms_send(sms_message_id=sms.pk)

    sms.refresh_from_db()
    assert sms.status == SmsStatus.QUEUED
    assert sms.attempts == 1


def test_r8_a_twilio_500_every_time_is_retried_by_the_task_then_recorded_failed(
    backend_with, django_capture_on_commit_callbacks
):
    backend_with(headers={"Prefer": "code=500"})

    sms = _queue_and_commit(django_capture_on_commit_callbacks)

    assert sms.status == SmsStatus.FAILED
    assert sms.attempts == sms_send_task.max_retries + 1
    assert "HTTP 500" in sms.error_message


def test_r8_a_twilio_429_is_retried_like_a_server_error(backend_with, twilio):
    backend = backend_with(headers={"Prefer": "code=429"})

    with pytest.raises(SmsTransientError, match="HTTP 429"):
        backend.send(to="+8613800138000", body="退回成功")


class RecordingClient(TwilioApiHttpClient):
    """Keeps the form fields of each request, as Twilio (here Prism) receives them."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sent: list[dict] = []

    def request(self, method, url, params=None, data=None, headers=None, **kwargs):
        self.sent.append(dict(data or {}))
        return super().request(method, url, params=params, data=data, headers=headers, **kwargs)


@pytest.mark.parametrize(
    ("service_sid", "expected_sender"),
    [
        ("", {"From": "+15005550006"}),
        ("MG" + "0123456789abcdef" * 2, {"MessagingServiceSid": "MG" + "0123456789abcdef" * 2}),
    ],
)
def test_r8_sms_is_sent_from_the_number_or_the_messaging_service_with_a_status_callback(
    backend_with, settings, django_capture_on_commit_callbacks, service_sid, expected_sender
):
    settings.TWILIO_MESSAGING_SERVICE_SID = service_sid
    backend = backend_with(RecordingClient)

    sms = _queue_and_commit(django_capture_on_commit_callbacks)

    assert sms.status == SmsStatus.SENT  # Prism accepted the request as Twilio would
    (fields,) = backend.client.http_client.sent
    sender = {k: fields[k] for k in ("From", "MessagingServiceSid") if k in fields}
    assert sender == expected_sender
    assert fields["To"] == "+8613800138000"
    assert fields["StatusCallback"] == ("https://portal.example.com/notifications/twilio/status/")


def test_r8_asking_twilio_what_was_sent_is_a_valid_request_that_matches_by_body(twilio):
    import datetime as dt

    backend = TwilioSmsBackend()
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

    # Prism answers the list request (validated against Twilio's description) with its example.
    listed = backend.client.messages.list(to="+8613800138000", limit=50)
    assert listed, "the mock's example page lists at least one message"
    example = listed[0]

    found = backend.find_sent(to="+8613800138000", body=example.body, since=long_ago)
    assert found is not None
    assert found.provider_id == example.sid
    assert backend.find_sent(to="+8613800138000", body="a text never sent", since=long_ago) is None


def test_r8_resend_asks_twilio_with_a_valid_request_and_records_the_message_it_found(
    twilio, monkeypatch
):
    """The failed SMS's text is the one Prism's example lists: Twilio has it, so resend
    records its SID instead of sending (a send would be a POST; none is made)."""
    import datetime as dt

    from notifications.services import sms_resend

    example = TwilioSmsBackend().client.messages.list(to="+8613800138000", limit=50)[0]
    client = RecordingClient(api_base=twilio, timeout=10)
    backend = TwilioSmsBackend(http_client=client)
    sms = SmsMessage.objects.create(
        to="+8613800138000",
        body=example.body,
        purpose=SmsPurpose.RETURN_COMPLETED,
        idempotency_key="return:3:return_completed",
        status=SmsStatus.FAILED,
    )
    # Created before the example message's date_created (2019), so it is in the window.
    SmsMessage.objects.filter(pk=sms.pk).update(created_at=dt.datetime(2019, 1, 1, tzinfo=dt.UTC))

    monkeypatch.setattr("notifications.services.get_sms_backend", lambda: backend)

    settled = sms_resend(sms_message_id=sms.pk, actor=staff_actor())

    assert settled.provider_id == example.sid
    assert settled.status == SmsStatus.SENT  # Prism's example says "sent"
    # Only look-ups (GETs, no form fields; Prism's pages go on, so the SDK reads up to its
    # limit): no message was created.
    assert client.sent
    assert all(fields == {} for fields in client.sent)


def test_r8_asking_twilio_for_a_messages_status_by_sid_is_a_valid_request(twilio):
    backend = TwilioSmsBackend()

    # Prism checks the path (account and message SID patterns) against Twilio's description
    # and answers with its example: a message "sent", with error 30007.
    found = backend.fetch_status(provider_id="SM" + "0123456789abcdef" * 2)

    assert found is not None
    assert (found.status, found.error_code) == ("sent", "30007")


def test_r8_reconciliation_through_the_sdk_records_when_twilio_was_asked(twilio):
    from datetime import timedelta

    from django.utils import timezone

    from notifications.services import sms_status_reconcile

    sms = SmsMessage.objects.create(
        to="+8613800138000",
        body="退回成功",
        purpose=SmsPurpose.RETURN_COMPLETED,
        idempotency_key="return:4:return_completed",
        status=SmsStatus.SENT,
        provider_id="SM" + "0123456789abcdef" * 2,
        sent_at=timezone.now() - timedelta(hours=1),
    )

    checked = sms_status_reconcile(
        older_than=timedelta(minutes=15), give_up_after=timedelta(days=3), limit=10
    )

    assert checked == 1
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT  # Twilio (the example) still says "sent"
    assert sms.status_checked_at is not None


def test_r8_the_twilio_sdk_logs_nothing_below_warning_when_sending(
    twilio, django_capture_on_commit_callbacks, caplog
):
    """At INFO the SDK logs every request with the Account SID and the recipient's number;
    settings.LOGGING sets its logger to WARNING (caplog's level is left alone here: it would
    override that)."""
    import logging

    assert logging.getLogger("twilio.http_client").getEffectiveLevel() == logging.WARNING

    sms = _queue_and_commit(django_capture_on_commit_callbacks)

    assert sms.status == SmsStatus.SENT  # a request was made
    assert [r for r in caplog.records if r.name.startswith("twilio")] == []
