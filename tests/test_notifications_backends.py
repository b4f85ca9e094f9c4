"""SMS backends: chosen by settings.SMS_BACKEND; failures come out as transient or permanent."""

import socket
from collections.abc import Iterator

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured

from notifications.backends import (
    ConsoleSmsBackend,
    InMemorySmsBackend,
    TwilioApiHttpClient,
    TwilioSmsBackend,
    get_sms_backend,
)
from notifications.exceptions import SmsOutcomeUnknown, SmsTransientError
from tests.processes import free_port

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


@pytest.fixture
def twilio_settings(settings):
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = "test-auth-token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    return settings


@pytest.mark.parametrize(
    ("name", "backend_class"),
    [
        ("console", ConsoleSmsBackend),
        ("memory", InMemorySmsBackend),
        ("notifications.backends.InMemorySmsBackend", InMemorySmsBackend),
    ],
)
def test_r8_the_backend_is_chosen_by_the_sms_backend_setting(settings, name, backend_class):
    settings.SMS_BACKEND = name

    assert type(get_sms_backend()) is backend_class


def test_r8_the_twilio_backend_is_chosen_when_its_credentials_are_set(twilio_settings):
    twilio_settings.SMS_BACKEND = "twilio"

    assert isinstance(get_sms_backend(), TwilioSmsBackend)


def test_r8_the_twilio_backend_is_built_once_per_process_and_configuration(twilio_settings):
    # Its client keeps the connection to Twilio open between messages.
    twilio_settings.SMS_BACKEND = "twilio"

    first = get_sms_backend()
    assert get_sms_backend() is first
    assert get_sms_backend().client is first.client

    twilio_settings.TWILIO_FROM_NUMBER = "+15005550007"
    other = get_sms_backend()
    assert other is not first
    assert other.from_number == "+15005550007"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("carrier-pigeon", "is unknown"),
        ("notifications.backends.NoSuchBackend", "cannot be imported"),
        ("notifications.models.SmsMessage", "is not a BaseSmsBackend subclass"),
    ],
)
def test_r8_an_unknown_backend_is_a_configuration_error(settings, name, message):
    settings.SMS_BACKEND = name

    with pytest.raises(ImproperlyConfigured, match=message):
        get_sms_backend()


@pytest.mark.parametrize(
    "missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"]
)
def test_r8_the_twilio_backend_refuses_to_start_without_credentials_or_a_sender(
    twilio_settings, missing
):
    twilio_settings.SMS_BACKEND = "twilio"
    setattr(twilio_settings, missing, "")

    with pytest.raises(ImproperlyConfigured, match="TWILIO_ACCOUNT_SID"):
        get_sms_backend()


def test_r8_the_console_backend_prints_the_message_for_the_developer(capsys):
    result = ConsoleSmsBackend().send(to="+8613800138000", body="退回成功")

    printed = capsys.readouterr().out
    assert result.provider_id.startswith("console-")
    assert result.provider_id in printed
    assert "To: +86 138****8000" in printed  # masked: console output ends up in logs
    assert "13800138000" not in printed
    assert "退回成功" in printed


def test_r8_the_in_memory_backend_keeps_each_message_with_its_own_id(sms_outbox):
    backend = InMemorySmsBackend()

    first = backend.send(to="+8613800138000", body="one")
    second = backend.send(to="+8613800138000", body="two", status_callback="https://x/cb")

    assert first.provider_id != second.provider_id
    assert [m["body"] for m in sms_outbox] == ["one", "two"]
    assert sms_outbox[1]["status_callback"] == "https://x/cb"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def closed_port_url() -> str:
    """A port nothing listens on: from this xdist worker's band, so no other worker's server
    (or live_server on an ephemeral port) can be listening there."""
    return f"http://127.0.0.1:{free_port()}"


def test_r8_the_twilio_client_calls_the_configured_api_base_instead_of_twilio(closed_port_url):
    client = TwilioApiHttpClient(api_base=closed_port_url + "/", timeout=1)
    port = closed_port_url.rsplit(":", 1)[1]

    with pytest.raises(requests.ConnectionError, match=f"host='127.0.0.1', port={port}"):
        client.request("GET", "https://api.twilio.com/2010-04-01/Accounts.json")


def test_r8_twilio_unreachable_is_a_transient_error(twilio_settings, closed_port_url):
    twilio_settings.TWILIO_API_BASE = closed_port_url

    with pytest.raises(SmsTransientError, match="unreachable"):
        TwilioSmsBackend().send(to="+8613800138000", body="hello")


def test_r8_a_twilio_that_does_not_answer_in_time_is_an_unknown_outcome_not_a_retry(
    twilio_settings, silent_server
):
    # The request was sent; Twilio may have accepted it. Retrying blindly could text twice.
    twilio_settings.TWILIO_API_BASE = silent_server
    twilio_settings.TWILIO_TIMEOUT_SECONDS = 0.3

    with pytest.raises(SmsOutcomeUnknown, match="did not answer in time"):
        TwilioSmsBackend().send(to="+8613800138000", body="hello")


class _RaisingClient:
    """An HTTP client for the Twilio SDK that fails the way the network does."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.logger = None

    def request(self, *args, **kwargs):
        raise self.exc


def _twilio_backend(settings, exc):
    from notifications.backends import TwilioSmsBackend

    settings.TWILIO_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
    settings.TWILIO_AUTH_TOKEN = "token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    return TwilioSmsBackend(http_client=_RaisingClient(exc))


@pytest.mark.parametrize(
    ("make_exc", "expected"),
    [
        (lambda: requests.ConnectTimeout("connect timed out"), "SmsTransientError"),
        (lambda: requests.ConnectionError("Connection aborted"), "SmsOutcomeUnknown"),
    ],
    ids=["connect-timeout-nothing-sent", "dropped-mid-request"],
)
def test_r8_twilio_network_errors_are_retried_only_when_nothing_can_have_been_sent(
    settings, make_exc, expected
):
    from notifications import exceptions

    backend = _twilio_backend(settings, make_exc())
    with pytest.raises(getattr(exceptions, expected)):
        backend.send(to="+8613800138000", body="hello")
