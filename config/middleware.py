"""Site-wide response policies that belong to no app."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers


class PrivatePagesMiddleware:
    """Every response to a logged-in user carries ``Cache-Control: private, no-store`` (with
    no-cache, must-revalidate, max-age=0): no shared or browser cache keeps a customer's page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


class RequestBodyLimitMiddleware:
    """A request that announces a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (12 MB: the
    10 MB scan limit plus the form around it) is answered 413 before a byte of it is read.

    Placed before anything that reads the body (CSRF reads the form), so an oversized upload
    is cut off at the door instead of being spooled to disk first. WSGI reads no body without
    a Content-Length, so a chunked body is never read either. The page says what to do in the
    visitor's language (after LocaleMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return render(
                request,
                "413.html",
                {"limit_mb": settings.RED_LETTER_FORM_MAX_BYTES // (1024 * 1024), "bare": True},
                status=413,
            )
        return self.get_response(request)
