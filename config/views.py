"""Operational endpoints."""

from django.conf import settings
from django.db import connection
from django.db.utils import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.log import log_response
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
