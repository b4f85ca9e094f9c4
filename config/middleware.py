"""Site-wide response policies that belong to no app: staff session length, private caching."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

_STAFF_EXPIRY_SET = "_staff_session_expiry"


class SessionPolicyMiddleware:
    """Shorter sessions for staff; authenticated pages are never stored by a cache.

    Staff sessions end after ``STAFF_SESSION_SECONDS`` (8 hours by default) while customers keep
    ``SESSION_COOKIE_AGE`` (two weeks): the expiry is set on the response that logs a staff
    member in, before the session middleware writes the cookie. Every response to a logged-in
    user carries ``Cache-Control: private, no-store`` (plus no-cache, max-age=0).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if user.is_staff and not request.session.get(_STAFF_EXPIRY_SET):
                request.session.set_expiry(settings.STAFF_SESSION_SECONDS)
                request.session[_STAFF_EXPIRY_SET] = True
            add_never_cache_headers(response)
        return response
