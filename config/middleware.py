"""Site-wide response policies that belong to no app."""

from collections.abc import Callable
from functools import cache
from http import HTTPStatus
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.shortcuts import render
from django.utils import translation
from django.utils.cache import add_never_cache_headers, patch_vary_headers


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


class LocaleMiddleware(DjangoLocaleMiddleware):
    """Django's, without looking for a language prefix in the path when no URL has one (no
    ``i18n_patterns``, as here): Django looks it up twice a request whatever the URLs, trying
    the path's first segment ("billing") as a language and catching the exceptions of its
    failure, then ignores the answer (issue 16). The language still comes from the cookie the
    language switch sets, then the browser's Accept-Language, then ``LANGUAGE_CODE``; with
    language prefixes this is Django's middleware (tests/test_locale_middleware.py)."""

    def process_request(self, request: HttpRequest) -> None:
        if _prefixes_used(request):
            return super().process_request(request)
        translation.activate(translation.get_language_from_request(request))
        request.LANGUAGE_CODE = translation.get_language()
        return None

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if _prefixes_used(request):
            return super().process_response(request, response)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


def _prefixes_used(request: HttpRequest) -> bool:
    urlconf = getattr(request, "urlconf", settings.ROOT_URLCONF)
    return bool(is_language_prefix_patterns_used(urlconf)[0])


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


# What a view or a decorator of django-csp (csp_update, csp_replace, csp_exempt…) or a template
# asking for a nonce leaves on the response or the request: the policy is then built for it.
_PER_RESPONSE_PARTS = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)


@cache
def _settings_policy(report_only: bool) -> tuple[str, tuple[str, ...]]:
    """The header django-csp builds from the settings alone, and the path prefixes it skips."""
    name = "CONTENT_SECURITY_POLICY_REPORT_ONLY" if report_only else "CONTENT_SECURITY_POLICY"
    prefixes = (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ()
    return build_policy(report_only=report_only), tuple(prefixes)


@receiver(setting_changed)
def _policy_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
        _settings_policy.cache_clear()


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the header built once per process when a response has no
    policy of its own (issue 16: building it cost ~4 % of a Refund POST's CPU).

    The policy is a function of the settings unless a view or decorator changed it for its
    response or the page asked for a nonce; those responses go through django-csp's own
    ``process_response``. For the others this writes the same headers under the same
    conditions (debug pages, a header the view set itself, ``csp_exempt``, excluded prefixes)
    and, as django-csp does, refuses a nonce asked for after the header is written
    (tests/security/test_headers.py compares both middlewares' headers)."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _PER_RESPONSE_PARTS
        ):
            return super().process_response(request, response)
        if settings.DEBUG and response.status_code in (
            HTTPStatus.INTERNAL_SERVER_ERROR,
            HTTPStatus.NOT_FOUND,
        ):
            return response
        for header, exempt, report_only in (
            (HEADER, "_csp_exempt", False),
            (HEADER_REPORT_ONLY, "_csp_exempt_ro", True),
        ):
            policy, prefixes = _settings_policy(report_only)
            if (
                policy
                and header not in response
                and getattr(response, exempt, False) is False
                and not request.path_info.startswith(prefixes)
            ):
                response[header] = policy
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
