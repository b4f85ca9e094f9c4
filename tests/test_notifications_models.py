"""SmsMessage's invariants live in PostgreSQL: each constraint is tested both ways."""

import pytest
from django.db import DataError, IntegrityError, transaction

from notifications.models import SmsMessage, SmsPurpose, SmsStatus

pytestmark = pytest.mark.django_db


def _sms(**overrides: object) -> SmsMessage:
    fields = {
        "to": "+8613800138000",
        "body": "Your return is complete; you may apply for a new invoice.",
        "purpose": SmsPurpose.RETURN_COMPLETED,
        "idempotency_key": "return:1:return_completed",
    }
    return SmsMessage.objects.create(**(fields | overrides))


def test_r8_a_new_sms_is_queued_with_no_attempts_in_chinese_by_default():
    sms = _sms()

    sms.refresh_from_db()
    assert sms.status == SmsStatus.QUEUED
    assert sms.attempts == 0
    assert sms.language == "zh-hans"
    assert sms.provider_id == ""


def test_r8_the_idempotency_key_is_unique_in_the_database():
    _sms(idempotency_key="return:7:return_completed")

    with pytest.raises(IntegrityError), transaction.atomic():
        _sms(idempotency_key="return:7:return_completed")


def test_r8_different_idempotency_keys_are_accepted():
    _sms(idempotency_key="return:7:return_received")
    _sms(idempotency_key="return:7:return_completed")

    assert SmsMessage.objects.count() == 2


def test_r8_a_provider_id_belongs_to_one_sms_only():
    _sms(idempotency_key="a", provider_id="SM" + "1" * 32)

    with pytest.raises(IntegrityError), transaction.atomic():
        _sms(idempotency_key="b", provider_id="SM" + "1" * 32)


def test_r8_many_unsent_sms_may_have_an_empty_provider_id():
    _sms(idempotency_key="a", provider_id="")
    _sms(idempotency_key="b", provider_id="")

    assert SmsMessage.objects.filter(provider_id="").count() == 2


@pytest.mark.parametrize(
    "to",
    ["13800138000", "+0613800138000", "+86 138 0013 80", "+123456", "+86-13800138000", ""],
)
def test_r8_the_recipient_must_be_an_e164_number(to: str):
    with pytest.raises(IntegrityError), transaction.atomic():
        _sms(to=to)


@pytest.mark.parametrize("to", ["+8613800138000", "+15005550006", "+1234567", "+123456789012345"])
def test_r8_e164_numbers_are_accepted(to: str):
    assert _sms(to=to).pk


def test_r8_a_number_longer_than_e164_allows_does_not_fit_the_column():
    with pytest.raises(DataError), transaction.atomic():
        _sms(to="+1234567890123456")


def test_r8_an_sms_body_cannot_be_empty():
    with pytest.raises(IntegrityError), transaction.atomic():
        _sms(body="")
