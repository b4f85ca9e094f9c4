"""Twilio's status callbacks: signed, applied once, never moving a message backwards."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from twilio.request_validator import RequestValidator

from notifications.models import SmsMessage, SmsPendingStatusCallback, SmsPurpose, SmsStatus
from notifications.services import sms_status_update
from tests.factories import staff_actor

pytestmark = pytest.mark.django_db

AUTH_TOKEN = "test-auth-token"
CALLBACK_URL = "http://testserver/notifications/twilio/status/"
SID = "SM" + "0123456789abcdef" * 2


@pytest.fixture(autouse=True)
def _auth_token(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN


def _sms(status: SmsStatus = SmsStatus.SENT, provider_id: str = SID, **extra) -> SmsMessage:
    return SmsMessage.objects.create(
        to="+8613800138000",
        body="退回成功",
        purpose=SmsPurpose.RETURN_COMPLETED,
        idempotency_key=f"return:1:{provider_id or 'unsent'}",
        status=status,
        provider_id=provider_id,
        **extra,
    )


def _callback(status: str, sid: str = SID, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": "AC" + "0" * 32,
        "To": "+8613800138000",
        **extra,
    }


def _post(client: Client, params: dict[str, str], signature: str | None = "valid"):
    headers = {}
    if signature == "valid":
        signature = RequestValidator(AUTH_TOKEN).compute_signature(CALLBACK_URL, params)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(reverse("notifications:twilio-status"), params, headers=headers)


def test_r8_the_callback_url_is_the_one_twilio_is_given():
    assert "http://testserver" + reverse("notifications:twilio-status") == CALLBACK_URL


def test_r8_a_signed_delivered_callback_marks_the_sms_delivered(client):
    sms = _sms()

    response = _post(client, _callback("delivered"))

    assert response.status_code == 200
    assert response.content == b""
    sms.refresh_from_db()
    assert sms.status == SmsStatus.DELIVERED
    assert sms.delivered_at is not None


@pytest.mark.parametrize("signature", ["bm90IGEgc2lnbmF0dXJl", "", None])
def test_r8_a_callback_with_a_bad_or_missing_signature_is_refused_and_changes_nothing(
    client, signature
):
    sms = _sms()

    response = _post(client, _callback("delivered"), signature=signature)

    assert response.status_code == 403
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT


def test_r8_without_an_auth_token_even_a_callback_signed_with_the_empty_key_is_refused(
    client, settings
):
    settings.TWILIO_AUTH_TOKEN = ""
    sms = _sms()
    params = _callback("delivered")
    signature = RequestValidator("").compute_signature(CALLBACK_URL, params)

    response = _post(client, params, signature=signature)

    assert response.status_code == 403
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT


def test_r8_a_callback_signed_for_other_parameters_is_refused(client):
    sms = _sms()
    signed_for = _callback("delivered")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(CALLBACK_URL, signed_for)

    response = _post(client, _callback("failed", ErrorCode="30003"), signature=signature)

    assert response.status_code == 403
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT


def test_r8_the_same_callback_twice_changes_the_sms_once(client):
    sms = _sms()

    _post(client, _callback("delivered"))
    sms.refresh_from_db()
    first = (sms.status, sms.delivered_at, sms.updated_at)
    response = _post(client, _callback("delivered"))

    assert response.status_code == 200
    sms.refresh_from_db()
    assert (sms.status, sms.delivered_at, sms.updated_at) == first


def test_r8_sent_arriving_after_delivered_leaves_the_sms_delivered(client):
    sms = _sms()

    _post(client, _callback("delivered"))
    _post(client, _callback("sent"))

    sms.refresh_from_db()
    assert sms.status == SmsStatus.DELIVERED


def test_r8_an_undelivered_callback_fails_the_sms_with_twilios_error_code(client):
    sms = _sms()

    _post(client, _callback("undelivered", ErrorCode="30003"))

    sms.refresh_from_db()
    assert sms.status == SmsStatus.FAILED
    assert sms.error_code == "30003"


def test_r8_a_callback_for_an_unknown_message_is_accepted_so_twilio_stops_retrying(client):
    sms = _sms()

    response = _post(client, _callback("delivered", sid="SM" + "f" * 32))

    assert response.status_code == 200
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT


def test_r8_a_callback_that_arrives_before_the_sid_is_saved_is_applied_when_it_is(client):
    from notifications.services import sms_outcome_record

    sms = _sms(status=SmsStatus.SENDING, provider_id="")  # Twilio has answered, we have not
    # Twilio's callback overtakes our write of its answer: the SID is still unknown here.
    response = _post(client, _callback("failed", ErrorCode="30008"))
    assert response.status_code == 200
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENDING

    sms_outcome_record(sms_message_id=sms.pk, status=SmsStatus.SENT, provider_id=SID)

    sms.refresh_from_db()
    assert sms.status == SmsStatus.FAILED  # the early "failed" was kept, not lost
    assert sms.error_code == "30008"
    assert not SmsPendingStatusCallback.objects.exists()  # applied once, then dropped


def test_r8_early_callbacks_replayed_and_out_of_order_apply_once_and_only_forward(client):
    from notifications.services import sms_outcome_record

    sms = _sms(status=SmsStatus.SENDING, provider_id="")
    for status in ("delivered", "sent", "delivered", "queued"):
        assert _post(client, _callback(status)).status_code == 200
    assert SmsPendingStatusCallback.objects.count() == 3  # the replayed "delivered" kept once

    sms_outcome_record(sms_message_id=sms.pk, status=SmsStatus.SENT, provider_id=SID)

    sms.refresh_from_db()
    assert sms.status == SmsStatus.DELIVERED
    assert sms.delivered_at is not None
    assert not SmsPendingStatusCallback.objects.exists()
    delivered = (sms.status, sms.delivered_at, sms.updated_at)
    _post(client, _callback("delivered"))  # Twilio retries once more: nothing changes
    sms.refresh_from_db()
    assert (sms.status, sms.delivered_at, sms.updated_at) == delivered
    assert not SmsPendingStatusCallback.objects.exists()


def test_r8_a_callback_for_a_sid_found_by_a_resend_look_up_is_applied(client, sms_outbox):
    from notifications.backends import InMemorySmsBackend
    from notifications.services import sms_resend

    sms = _sms(status=SmsStatus.FAILED, provider_id="")
    sid = InMemorySmsBackend().send(to=sms.to, body=sms.body).provider_id
    _post(client, _callback("delivered", sid=sid))  # nothing knew this SID yet

    settled = sms_resend(sms_message_id=sms.pk, actor=staff_actor())

    assert settled.provider_id == sid
    assert settled.status == SmsStatus.DELIVERED


def test_r8_a_pending_callback_is_stored_once_per_status_by_the_database():
    from django.db import IntegrityError, transaction

    SmsPendingStatusCallback.objects.create(provider_id=SID, status="delivered")
    SmsPendingStatusCallback.objects.create(provider_id=SID, status="sent")  # another status

    with pytest.raises(IntegrityError), transaction.atomic():
        SmsPendingStatusCallback.objects.create(provider_id=SID, status="delivered")


def test_r8_the_status_endpoint_accepts_only_post(client):
    assert client.get(reverse("notifications:twilio-status")).status_code == 405


# --- the status rules, at the service ------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "twilio_status", "expected"),
    [
        (SmsStatus.SENT, "queued", SmsStatus.SENT),
        (SmsStatus.SENT, "accepted", SmsStatus.SENT),
        (SmsStatus.SENT, "sending", SmsStatus.SENT),
        (SmsStatus.SENDING, "queued", SmsStatus.SENDING),
        (SmsStatus.SENDING, "sent", SmsStatus.SENT),
        (SmsStatus.SENDING, "delivered", SmsStatus.DELIVERED),
        (SmsStatus.SENT, "delivered", SmsStatus.DELIVERED),
        (SmsStatus.DELIVERED, "sent", SmsStatus.DELIVERED),
        (SmsStatus.DELIVERED, "failed", SmsStatus.DELIVERED),
        (SmsStatus.SENT, "failed", SmsStatus.FAILED),
        (SmsStatus.FAILED, "delivered", SmsStatus.FAILED),
        (SmsStatus.SENT, "a-status-twilio-adds-later", SmsStatus.SENT),
    ],
)
def test_r8_a_status_callback_only_moves_the_sms_forward(current, twilio_status, expected):
    _sms(status=current)

    sms = sms_status_update(provider_id=SID, status=twilio_status)

    assert sms is not None
    assert sms.status == expected
    sms.refresh_from_db()
    assert sms.status == expected


def test_r8_a_status_for_an_unknown_provider_id_returns_none_and_is_kept_for_later():
    assert sms_status_update(provider_id="SM" + "e" * 32, status="delivered") is None
    assert SmsPendingStatusCallback.objects.filter(provider_id="SM" + "e" * 32).count() == 1


def test_r8_a_status_without_a_provider_id_never_touches_unsent_messages():
    unsent = _sms(status=SmsStatus.QUEUED, provider_id="")

    assert sms_status_update(provider_id="", status="failed") is None
    unsent.refresh_from_db()
    assert unsent.status == SmsStatus.QUEUED
    assert not SmsPendingStatusCallback.objects.exists()


# --- the back office -----------------------------------------------------------------------


def test_r8_the_back_office_lists_sms_read_only(admin_client):
    _sms()

    changelist = admin_client.get(reverse("admin:notifications_smsmessage_changelist"))
    add = admin_client.get(reverse("admin:notifications_smsmessage_add"))

    assert changelist.status_code == 200
    assert "+8613800138000" in changelist.content.decode()
    assert add.status_code == 403


def test_r8_the_back_office_lists_early_status_callbacks_read_only(admin_client):
    SmsPendingStatusCallback.objects.create(provider_id=SID, status="failed", error_code="30008")

    changelist = admin_client.get(
        reverse("admin:notifications_smspendingstatuscallback_changelist")
    )
    add = admin_client.get(reverse("admin:notifications_smspendingstatuscallback_add"))

    assert changelist.status_code == 200
    assert SID in changelist.content.decode()
    assert add.status_code == 403


def _resend_action(client: Client, *sms: SmsMessage):
    return client.post(
        reverse("admin:notifications_smsmessage_changelist"),
        {"action": "resend", "_selected_action": [s.pk for s in sms]},
        follow=True,
    )


def test_r8_staff_resend_a_failed_sms_and_the_others_are_reported_untouched(
    admin_client, django_capture_on_commit_callbacks, sms_outbox
):
    failed = _sms(status=SmsStatus.FAILED, provider_id="", error_message="gave up")
    delivered = _sms(status=SmsStatus.DELIVERED)

    with django_capture_on_commit_callbacks() as callbacks:
        response = _resend_action(admin_client, failed, delivered)

    failed.refresh_from_db()
    delivered.refresh_from_db()
    assert failed.status == SmsStatus.QUEUED
    assert delivered.status == SmsStatus.DELIVERED
    assert len(callbacks) == 1
    shown = [str(m) for m in response.context["messages"]]
    assert "1 message queued for sending again." in shown
    assert "1 message was not resent: only failed messages can be resent." in shown


def test_r8_staff_resend_tells_them_when_a_failed_sms_had_reached_twilio_and_sends_nothing(
    admin_client, django_capture_on_commit_callbacks, sms_outbox
):
    from notifications.backends import InMemorySmsBackend

    reached = _sms(status=SmsStatus.FAILED, provider_id="", error_message="gave up")
    InMemorySmsBackend().send(to=reached.to, body=reached.body)

    with django_capture_on_commit_callbacks() as callbacks:
        response = _resend_action(admin_client, reached)

    reached.refresh_from_db()
    assert reached.status == SmsStatus.SENT
    assert reached.provider_id == sms_outbox[0]["provider_id"]
    assert callbacks == []
    shown = [str(m) for m in response.context["messages"]]
    assert (
        "1 message had already reached Twilio: recorded with Twilio's status, not sent again."
        in shown
    )


def test_r8_staff_resend_says_so_when_twilio_cannot_be_asked(
    admin_client, monkeypatch, django_capture_on_commit_callbacks
):
    from notifications.backends import InMemorySmsBackend
    from notifications.exceptions import SmsTransientError

    def unreachable(self, **kwargs):
        raise SmsTransientError("Twilio unreachable")

    monkeypatch.setattr(InMemorySmsBackend, "find_sent", unreachable)
    failed = _sms(status=SmsStatus.FAILED, provider_id="")

    with django_capture_on_commit_callbacks() as callbacks:
        response = _resend_action(admin_client, failed)

    failed.refresh_from_db()
    assert failed.status == SmsStatus.FAILED
    assert callbacks == []
    shown = " ".join(str(m) for m in response.context["messages"])
    assert "could not ask Twilio" in shown


def test_r8_staff_without_the_resend_permission_cannot_resend(
    client, django_capture_on_commit_callbacks
):
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_smsmessage"))
    client.force_login(viewer)
    failed = _sms(status=SmsStatus.FAILED, provider_id="")

    with django_capture_on_commit_callbacks() as callbacks:
        _resend_action(client, failed)

    failed.refresh_from_db()
    assert failed.status == SmsStatus.FAILED
    assert callbacks == []
