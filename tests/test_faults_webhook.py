"""Fault 5: forged and replayed Twilio status callbacks on a real completed return's SMS.

Injected: a callback with a bad signature, and the same valid callback twice. Counted: the
HTTP status, the SMS's status and ``updated_at`` after each, and ``check_ledger``.
"""

import pytest
from django.core.management import call_command

from notifications.models import SmsMessage, SmsPurpose, SmsStatus
from tests.factories import CustomerFactory, UserFactory, issue_invoice
from tests.returns_helpers import log_paper, submit
from tests.test_notifications_webhook import AUTH_TOKEN, _callback, _post

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent_sms(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    invoice = issue_invoice(CustomerFactory())
    rr = submit(invoice)
    log_paper(invoice, UserFactory(is_staff=True))  # eager: processed, SMS sent in memory
    sms = SmsMessage.objects.get(related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED)
    assert sms.status == SmsStatus.SENT
    return sms


def _snapshot(sms: SmsMessage) -> tuple:
    sms.refresh_from_db()
    return (sms.status, sms.updated_at, sms.delivered_at, sms.error_code)


def test_r8_fault_a_callback_with_a_bad_signature_is_refused_and_changes_nothing(client, sent_sms):
    before = _snapshot(sent_sms)

    response = _post(client, _callback("delivered", sid=sent_sms.provider_id), signature="forged")

    assert response.status_code == 403
    assert _snapshot(sent_sms) == before
    call_command("check_ledger")


def test_r8_fault_the_same_valid_callback_twice_changes_the_sms_once(client, sent_sms):
    params = _callback("delivered", sid=sent_sms.provider_id)

    first = _post(client, params)
    after_first = _snapshot(sent_sms)
    second = _post(client, params)

    assert (first.status_code, second.status_code) == (200, 200)
    assert after_first[0] == SmsStatus.DELIVERED
    assert after_first[2] is not None
    assert _snapshot(sent_sms) == after_first  # the replay touched nothing, not even updated_at
    call_command("check_ledger")
