"""Errors from sending an SMS, split by what the caller should do next."""

from django.utils.translation import gettext_lazy as _

from core.exceptions import DomainError


class SmsError(Exception):
    """Sending an SMS did not succeed."""


class SmsTransientError(SmsError):
    """The provider may accept the same message later: 5xx, 429, timeouts, connection errors.

    The send task retries these with backoff.
    """


class SmsPermanentError(SmsError):
    """The provider refused the message; sending it again unchanged cannot succeed.

    ``code`` is the provider's error code (Twilio's, e.g. 21211 for an invalid number) or None.
    """

    def __init__(self, message: str, *, code: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} (code {self.code})" if self.code is not None else self.message


class SmsOutcomeUnknown(SmsError):
    """The request may have reached the provider, but no answer came back (a read timeout, a
    connection dropped after sending). Sending again could text the customer twice; the
    provider is asked first (``find_sent``) before any new attempt."""


class SmsOutcomeNotRecorded(SmsError):
    """The provider answered (it may have accepted the message), but the database connection
    was lost before the answer was written. ``outcome`` is the answer as plain strings (see
    ``notifications.services.SendOutcome``): the send task retries writing it, never the send."""

    def __init__(self, message: str, *, outcome: dict[str, str]) -> None:
        super().__init__(message)
        self.outcome = outcome


class SmsProviderUnavailable(DomainError):
    """Staff asked to resend, but the provider could not be asked whether the message already
    went out; resending blindly could text the customer twice."""

    default_message = _(
        "Could not ask Twilio whether this message already went out; nothing was sent. "
        "Please try again in a few minutes."
    )
