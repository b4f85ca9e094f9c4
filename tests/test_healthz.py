"""/healthz: 200 with database and broker status; 503 when the database is down."""

import pytest
from django.db.utils import OperationalError

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "eager"}


def test_healthz_reports_a_reachable_redis_broker(client, settings, redis_url):
    from tests.services_check import require_redis

    settings.CELERY_BROKER_URL = require_redis(redis_url)
    from config.celery import app

    app.conf.broker_url = redis_url
    try:
        assert client.get("/healthz").json()["broker"] == "ok"
    finally:
        app.conf.broker_url = ""


def test_healthz_is_503_when_the_database_is_down(client, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    def down(self, sql, params=None):
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", down)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"].startswith("error")


def test_healthz_logs_a_failing_probe_as_a_warning_not_an_error(client, monkeypatch, caplog):
    """A load balancer probes every few seconds: an outage must not become an ERROR each time."""
    import logging

    from django.db.backends.utils import CursorWrapper

    def down(self, sql, params=None):
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", down)
    caplog.set_level(logging.INFO)

    assert client.get("/healthz").status_code == 503

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert errors == []
    assert len(warnings) == 1
    assert "OperationalError" in warnings[0].getMessage()
