"""Operational endpoints, and the error pages (400, 403, 404, 500, CSRF failure)."""

from django.conf import settings
from django.db import connection
from django.db.utils import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.log import log_response
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return f"error: {exc.__class__.__name__}"
    return "ok"


def _broker_status() -> str:
    if not settings.CELERY_BROKER_URL:
        return "eager"
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"
    return "ok"


@never_cache
@require_GET
def healthz(request):
    """200 with database and broker status; 503 when the database is down.

    A broker outage is reported but keeps 200: requests still succeed and the sweeper
    re-enqueues the work once the broker is back.
    """
    database = _database_status()
    broker = _broker_status()
    status = 200 if database == "ok" else 503
    response = JsonResponse({"database": database, "broker": broker}, status=status)
    if status != 200:
        # Probes come every few seconds: an outage is worth a WARNING per probe, not an ERROR
        # (Django logs a 5xx at ERROR unless the response has been logged already).
        log_response(
            "Health check failed: database %s, broker %s",
            database,
            broker,
            response=response,
            request=request,
            level="warning",
        )
    return response


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, object] | None = None,
) -> HttpResponse:
    """django-axes' lock-out page (AXES_LOCKOUT_CALLABLE), for both log-in pages: 429."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": minutes},
        status=429,
    )


# --- Error pages -------------------------------------------------------------------------------
# In the portal's layout and the visitor's language (LocaleMiddleware has chosen it by then),
# each saying what happened in words and offering a way back: to the back office for a page
# under /admin/, to the Billing Center otherwise. Wired by handler400/403/404/500 in
# config/urls.py and CSRF_FAILURE_VIEW in the settings.


def _error_page(
    request: HttpRequest, *, status: int, title: str, message: str, bare: bool = False
) -> HttpResponse:
    if request.path.startswith("/admin/"):
        back_url, back_label = reverse("admin:index"), _("Back to the back office")
    else:
        back_url, back_label = reverse("billing:home"), _("Back to the Billing Center")
    context = {
        "status": status,
        "title": title,
        "message": message,
        "back_url": back_url,
        "back_label": back_label,
        # A 500 may come from a database that is down: the page then reads nothing that could
        # query it (the user's name and menu, the messages kept in the session).
        "bare": bare,
    }
    return render(request, "error.html", context, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(
        request,
        status=400,
        title=_("The request could not be understood"),
        message=_("Something in the address or the form was not valid. Go back and try again."),
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(
        request,
        status=403,
        title=_("You may not open this page"),
        message=_(
            "Your account has no access to this page. Log in with another account, or go back."
        ),
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(
        request,
        status=404,
        title=_("Page not found"),
        message=_(
            "There is no such page, or it belongs to another account. Check the address, or go "
            "back to your invoices."
        ),
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return _error_page(
        request,
        status=500,
        title=_("Something went wrong on our side"),
        message=_(
            "The page could not be shown. Nothing you sent is lost: try again in a few minutes."
        ),
        bare=True,
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form sent from an expired page (or from another site)."""
    return _error_page(
        request,
        status=403,
        title=_("This form has expired"),
        message=_(
            "The page you sent it from was open too long, or cookies are blocked. Go back, reload "
            "the page and send the form again."
        ),
    )
