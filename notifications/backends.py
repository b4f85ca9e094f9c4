"""Where an SMS goes: Twilio in production, stdout in development, a list in tests.

``get_sms_backend()`` picks one from ``settings.SMS_BACKEND``. A backend only talks to the
provider and translates its failures into ``SmsTransientError`` (worth retrying) or
``SmsPermanentError`` (not); recording the outcome is the job of ``notifications.services``.
"""

import functools
import sys
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import NameResolutionError, NewConnectionError

from config.logfilters import mask_phones
from notifications.exceptions import SmsOutcomeUnknown, SmsPermanentError, SmsTransientError

TWILIO_API_ORIGIN = "https://api.twilio.com"


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message: its id (Twilio's SID) and its first status."""

    provider_id: str
    status: str


@dataclass(frozen=True)
class ProviderStatus:
    """What the provider says about a message now: Twilio's status and error code, if any."""

    status: str
    error_code: str = ""


class BaseSmsBackend:
    def fetch_status(self, *, provider_id: str) -> ProviderStatus | None:
        """The provider's current status of the message with this id; None when it does not
        know the message (or cannot tell, as the console does). Raises ``SmsTransientError``
        when the provider cannot be asked."""
        return None

    def find_sent(
        self, *, to: str, body: str, since: datetime, exclude: Collection[str] = ()
    ) -> SendResult | None:
        """The message with this body sent to this number since ``since``, if the provider
        has it (ignoring the provider ids in ``exclude``, recorded on other messages): how an
        attempt with an unknown outcome is settled before sending again. Raises
        ``SmsTransientError`` when the provider cannot be asked."""
        return None

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Hand one message to the provider; raise ``SmsTransientError``/``SmsPermanentError``."""
        raise NotImplementedError


class ConsoleSmsBackend(BaseSmsBackend):
    """Development: print the message so a developer sees what the customer would get."""

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        provider_id = f"console-{uuid.uuid4()}"
        # Console output ends up in logs too: the number is masked (+86 138****8000).
        sys.stdout.write(
            f"----- SMS {provider_id} -----\n"
            f"To: {mask_phones(to)}\n"
            f"Status callback: {status_callback or '(none)'}\n\n"
            f"{mask_phones(body)}\n"
            f"{'-' * 40}\n"
        )
        sys.stdout.flush()
        return SendResult(provider_id=provider_id, status="sent")


# Messages "sent" by InMemorySmsBackend, oldest first. Tests clear it (fixture ``sms_outbox``).
outbox: list[dict[str, str | None]] = []


class InMemorySmsBackend(BaseSmsBackend):
    """Tests: keep the message in the module-level ``outbox`` list. A test may set an entry's
    ``status`` and ``error_code`` to what "Twilio" reports about it later."""

    def fetch_status(self, *, provider_id: str) -> ProviderStatus | None:
        for message in outbox:
            if message["provider_id"] == provider_id:
                return ProviderStatus(
                    status=str(message.get("status") or "sent"),
                    error_code=str(message.get("error_code") or ""),
                )
        return None

    def find_sent(
        self, *, to: str, body: str, since: datetime, exclude: Collection[str] = ()
    ) -> SendResult | None:
        for message in reversed(outbox):
            if (
                message["to"] == to
                and message["body"] == body
                and message["provider_id"] not in exclude
            ):
                return SendResult(
                    provider_id=str(message["provider_id"]),
                    status=str(message.get("status") or "sent"),
                )
        return None

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        # Unique across processes too: the ids are stored under a unique constraint, and a
        # database may outlive the process (a worker, a second benchmark run).
        provider_id = f"mem-{uuid.uuid4().hex}"
        outbox.append(
            {"provider_id": provider_id, "to": to, "body": body, "status_callback": status_callback}
        )
        return SendResult(provider_id=provider_id, status="sent")


class TwilioApiHttpClient(TwilioHttpClient):
    """The SDK's HTTP client with a configurable API address, a timeout and extra headers.

    The SDK fixes ``https://api.twilio.com`` and has no timeout by default; a worker must never
    hang on Twilio, and tests point ``api_base`` at a mock of Twilio's API (Prism), adding
    headers such as ``Prefer: code=500`` to ask the mock for an error.
    """

    def __init__(
        self,
        *,
        api_base: str = "",
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(timeout=timeout)
        self.api_base = api_base.rstrip("/")
        self.extra_headers = dict(headers or {})

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self.api_base and url.startswith(TWILIO_API_ORIGIN):
            url = self.api_base + url[len(TWILIO_API_ORIGIN) :]
        return super().request(
            method,
            url,
            params=params,
            data=data,
            headers={**(headers or {}), **self.extra_headers},
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


class TwilioSmsBackend(BaseSmsBackend):
    """Production: Twilio's Messages API through the official SDK.

    Sends from the Messaging Service when ``TWILIO_MESSAGING_SERVICE_SID`` is set (Twilio then
    picks the sender), otherwise from ``TWILIO_FROM_NUMBER``.
    """

    def __init__(self, *, http_client: TwilioHttpClient | None = None) -> None:
        account_sid = settings.TWILIO_ACCOUNT_SID
        auth_token = settings.TWILIO_AUTH_TOKEN
        self.messaging_service_sid = settings.TWILIO_MESSAGING_SERVICE_SID
        self.from_number = settings.TWILIO_FROM_NUMBER
        if not (account_sid and auth_token and (self.messaging_service_sid or self.from_number)):
            raise ImproperlyConfigured(
                "SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and either "
                "TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER."
            )
        if http_client is None:
            http_client = TwilioApiHttpClient(
                api_base=settings.TWILIO_API_BASE, timeout=settings.TWILIO_TIMEOUT_SECONDS
            )
        self.client = Client(account_sid, auth_token, http_client=http_client)

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        params: dict[str, Any] = {"to": to, "body": body}
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        else:
            params["from_"] = self.from_number
        if status_callback:
            params["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**params)
        except TwilioRestException as exc:
            raise _twilio_error(status=exc.status, code=exc.code, message=exc.msg) from exc
        except TwilioServiceException as exc:
            message_text = f"{exc.title}: {exc.detail}" if exc.detail else exc.title
            raise _twilio_error(status=exc.status, code=exc.code, message=message_text) from exc
        except requests.ConnectTimeout as exc:
            raise SmsTransientError(f"Twilio unreachable: {exc}") from exc
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                raise SmsTransientError(f"Twilio unreachable: {exc}") from exc
            raise SmsOutcomeUnknown(f"Twilio connection lost mid-request: {exc}") from exc
        except requests.Timeout as exc:
            raise SmsOutcomeUnknown(f"Twilio did not answer in time: {exc}") from exc
        return SendResult(provider_id=message.sid, status=str(message.status))

    def find_sent(
        self, *, to: str, body: str, since: datetime, exclude: Collection[str] = ()
    ) -> SendResult | None:
        """Look through Twilio's recent messages to this number for this exact body.

        Twilio's list filters by recipient and by *sent* date only, and a message still queued
        at Twilio has no sent date yet, so the creation time is checked here instead. Inbound
        messages (replies from the customer) are skipped."""
        try:
            recent = self.client.messages.list(to=to, limit=50)
        except (TwilioRestException, TwilioServiceException, requests.RequestException) as exc:
            raise SmsTransientError(f"Could not ask Twilio what was sent: {exc}") from exc
        for message in recent:
            created = message.date_created
            if (
                message.body == body
                and message.sid not in exclude
                and str(message.direction or "outbound-api").startswith("outbound")
                and (created is None or created >= since)
            ):
                return SendResult(provider_id=message.sid, status=str(message.status))
        return None

    def fetch_status(self, *, provider_id: str) -> ProviderStatus | None:
        """Fetch the message by its SID (``GET .../Messages/{Sid}.json``)."""
        try:
            message = self.client.messages(provider_id).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise SmsTransientError(f"Could not ask Twilio about {provider_id}: {exc}") from exc
        except (TwilioServiceException, requests.RequestException) as exc:
            raise SmsTransientError(f"Could not ask Twilio about {provider_id}: {exc}") from exc
        code = message.error_code
        return ProviderStatus(
            status=str(message.status), error_code="" if code is None else str(code)
        )


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was never made (refused, DNS): nothing was sent."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | NameResolutionError)


def _twilio_error(
    *, status: int, code: int | None, message: str
) -> SmsTransientError | SmsPermanentError:
    """Rate limits and server errors may pass; any other refusal will not."""
    if status == 429 or status >= 500:
        return SmsTransientError(f"Twilio answered HTTP {status}: {message}")
    return SmsPermanentError(f"Twilio answered HTTP {status}: {message}", code=code)


BACKENDS: dict[str, type[BaseSmsBackend]] = {
    "console": ConsoleSmsBackend,
    "memory": InMemorySmsBackend,
    "twilio": TwilioSmsBackend,
}


def get_sms_backend() -> BaseSmsBackend:
    """The backend named by ``settings.SMS_BACKEND``: console, memory, twilio or a dotted path.

    The Twilio backend is built once per process (per configuration) and reused: its client
    keeps the HTTPS connection to Twilio open between messages, and building one per message
    cost a connection and a TLS handshake each time."""
    name = settings.SMS_BACKEND
    if name == "twilio":
        return _shared_twilio_backend(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_MESSAGING_SERVICE_SID,
            settings.TWILIO_FROM_NUMBER,
            settings.TWILIO_API_BASE,
            settings.TWILIO_TIMEOUT_SECONDS,
        )
    if name in BACKENDS:
        backend_class: Any = BACKENDS[name]
    elif "." in name:
        try:
            backend_class = import_string(name)
        except ImportError as exc:
            raise ImproperlyConfigured(f"SMS_BACKEND={name!r} cannot be imported: {exc}") from exc
    else:
        raise ImproperlyConfigured(
            f"SMS_BACKEND={name!r} is unknown: use one of {', '.join(BACKENDS)} "
            "or the dotted path of a BaseSmsBackend subclass."
        )
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseSmsBackend)):
        raise ImproperlyConfigured(f"SMS_BACKEND={name!r} is not a BaseSmsBackend subclass.")
    return backend_class()


@functools.lru_cache(maxsize=4)
def _shared_twilio_backend(*configuration: object) -> TwilioSmsBackend:
    """One Twilio backend per configuration (the settings it reads are the cache key, so a
    changed setting, as in tests, gets a backend of its own); built on first use, lazily, so
    a process that sends nothing never builds one, and a forked pool process builds its own."""
    return TwilioSmsBackend()


def sms_backend_warm_up() -> None:
    """Import what the configured backend needs to send, so that processes forked after this
    (Celery's pool) do not each import it on their first message. Twilio's SDK loads its API
    modules on first use; touching ``messages`` on a throwaway client loads them."""
    if settings.SMS_BACKEND == "twilio":
        Client("AC" + "0" * 32, "warm-up").messages  # noqa: B018 (the import is the point)
