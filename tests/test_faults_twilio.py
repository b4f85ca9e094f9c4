"""Fault 3: Twilio (the Prism mock of its own API) fails, through the real SDK and the task.

Injected: ``Prefer: code=500`` on the first two requests, then nothing (Prism answers 201);
and ``Prefer: code=400`` (Twilio's 21211, invalid number). Counted: HTTP requests made, the
SMS's attempts and status, and ``check_ledger``.
"""

import re

import pytest
from django.core.management import call_command

from notifications.backends import TwilioApiHttpClient, TwilioSmsBackend
from notifications.models import SmsMessage, SmsPurpose, SmsStatus
from returns.models import ReturnState
from tests.factories import CustomerFactory, UserFactory, issue_invoice
from tests.returns_helpers import log_paper, submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.twilio_mock]

# The SID pattern of Twilio's description (Prism's dynamic answers use both letter cases).
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")


class FailingFirstClient(TwilioApiHttpClient):
    """Asks the mock for ``code`` on the first ``failures`` requests of each message (by body);
    records every answer per message."""

    def __init__(self, *, code: int, failures: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.code = code
        self.failures = failures
        self.statuses: dict[str, list[int]] = {}

    def request(self, method, url, params=None, data=None, headers=None, **kwargs):
        answers = self.statuses.setdefault(str((data or {}).get("Body")), [])
        # Prism's static example has one fixed SID; a dynamic answer gives each message its own.
        prefer = f"code={self.code}" if len(answers) < self.failures else "dynamic=true"
        headers = {**(headers or {}), "Prefer": prefer}
        response = super().request(method, url, params=params, data=data, headers=headers, **kwargs)
        answers.append(response.status_code)
        return response


@pytest.fixture
def twilio_client(monkeypatch, twilio):

    def install(*, code: int, failures: int) -> FailingFirstClient:
        client = FailingFirstClient(code=code, failures=failures, api_base=twilio, timeout=10)
        backend = TwilioSmsBackend(http_client=client)
        monkeypatch.setattr("notifications.services.get_sms_backend", lambda: backend)
        return client

    return install


def _complete_a_return():
    """Submit, log the paper (eager Celery processes it on commit), return the success SMS."""
    invoice = issue_invoice(CustomerFactory())
    rr = submit(invoice)
    log_paper(invoice, UserFactory(is_staff=True))
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    return SmsMessage.objects.get(related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED)


def test_r8_fault_twilio_500_twice_then_201_sends_one_sms_after_three_attempts(twilio_client):
    client = twilio_client(code=500, failures=2)

    sms = _complete_a_return()

    assert client.statuses[sms.body] == [500, 500, 201]
    assert sms.status == SmsStatus.SENT
    assert sms.attempts == 3
    assert MESSAGE_SID.match(sms.provider_id)
    assert SmsMessage.objects.count() == 1
    call_command("check_ledger")


def test_r8_fault_twilio_400_fails_the_sms_at_once_with_twilios_code_and_no_retry(
    twilio_client,
):
    client = twilio_client(code=400, failures=100)

    sms = _complete_a_return()  # the return itself completes: an SMS failure never undoes R6/R7

    assert client.statuses[sms.body] == [400]  # one request: no retry
    assert list(client.statuses.values()) == [[400]]  # the only SMS, tried once
    assert sms.status == SmsStatus.FAILED
    assert sms.attempts == 1
    assert sms.error_code == "21211"
    assert sms.provider_id == ""
    call_command("check_ledger")
