"""Site-wide receivers: staff sessions are shorter than customers'."""

from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest


@receiver(user_logged_in, dispatch_uid="config.staff_session_expiry")
def staff_session_expiry(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    """Staff sessions end after STAFF_SESSION_SECONDS (8 hours by default); customers keep
    SESSION_COOKIE_AGE (two weeks). Set at log-in, before the session cookie is written."""
    if request is not None and getattr(user, "is_staff", False):
        request.session.set_expiry(settings.STAFF_SESSION_SECONDS)
