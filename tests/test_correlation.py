"""The correlation id: from the request into its log lines, its tasks and the SMS row."""

import io
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.correlation import (
    correlation_id,
    correlation_id_reset,
    correlation_id_set,
    task_postrun_reset_correlation_id,
    task_prerun_restore_correlation_id,
    task_publish_add_correlation_id,
)
from core.logging import CorrelationIdFilter, JsonFormatter
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnState
from returns.roles import FINANCE_STAFF
from tests.factories import staff_in_role
from tests.processes import run_fresh_django
from tests.returns_helpers import submit

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def json_log(caplog):
    """The lines the production handler would write: its filter and its JSON formatter."""
    caplog.set_level(logging.INFO)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(CorrelationIdFilter())
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def test_the_request_id_given_is_in_the_requests_log_line_and_answered(client, json_log):
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-4f2a")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "req-4f2a"
    (line,) = [e for e in json_log() if e["logger"] == "django.request"]
    assert line["message"] == "Not Found: /no-such-page/"
    assert line["level"] == "WARNING"
    assert line["correlation_id"] == "req-4f2a"
    assert correlation_id() == ""  # nothing leaks past the request


def test_a_request_without_an_id_gets_a_new_one_and_a_strange_one_is_replaced(client):
    made = client.get("/no-such-page/")["X-Request-ID"]
    replaced = client.get("/no-such-page/", HTTP_X_REQUEST_ID="x" * 65)["X-Request-ID"]
    injected = client.get("/no-such-page/", HTTP_X_REQUEST_ID="a\nb")["X-Request-ID"]
    for value in (made, replaced, injected):
        assert len(value) == 32
        assert int(value, 16) >= 0
    assert len({made, replaced, injected}) == 3


def test_the_request_id_is_carried_into_the_eager_task_and_onto_the_sms_row(
    client, invoice, json_log, django_capture_on_commit_callbacks
):
    """Finance logs the paper (a web request); the processing task runs on commit (eager here,
    as in development) and the success SMS is queued: all under the request's id."""
    rr = submit(invoice)
    client.force_login(staff_in_role(FINANCE_STAFF, username="fin-cid"))
    paper = {
        "code_and_number": f"{invoice.code}{invoice.number}",
        "received_at": "2026-01-05T10:30",
        "invoice_form_present": "on",
        "undamaged": "on",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/returns/mailreceipt/log/", paper, HTTP_X_REQUEST_ID="req-paper-1"
        )
    assert response.status_code == 302
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    task_lines = [e for e in json_log() if e["message"].startswith(f"return {rr.pk}: ")]
    assert task_lines, "the processing service logs the request it sends"
    assert {e["correlation_id"] for e in task_lines} == {"req-paper-1"}
    sms = SmsMessage.objects.get(related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED)
    assert sms.correlation_id == "req-paper-1"


def test_a_published_task_carries_the_current_id_in_its_headers():
    headers: dict[str, str] = {}
    token = correlation_id_set("req-77")
    try:
        task_publish_add_correlation_id(headers=headers)
    finally:
        correlation_id_reset(token)
    assert headers == {"x_request_id": "req-77"}
    outside: dict[str, str] = {}
    task_publish_add_correlation_id(headers=outside)
    assert outside == {}


def test_a_worker_task_runs_under_the_id_of_its_message_and_drops_it_after():
    task = SimpleNamespace(request=SimpleNamespace(x_request_id="req-88"))
    task_prerun_restore_correlation_id(task_id="t1", task=task)
    assert correlation_id() == "req-88"
    task_postrun_reset_correlation_id(task_id="t1", task=task)
    assert correlation_id() == ""


def test_a_task_without_an_id_beat_say_gets_a_new_one():
    task = SimpleNamespace(request=SimpleNamespace(x_request_id=None))
    task_prerun_restore_correlation_id(task_id="t2", task=task)
    try:
        assert len(correlation_id()) == 32
    finally:
        task_postrun_reset_correlation_id(task_id="t2", task=task)
    assert correlation_id() == ""


def _log_one_line(**env: str) -> str:
    """What a fresh process with the base settings writes for one log line under an id."""
    code = (
        "import django, logging; django.setup(); "
        "from core.correlation import correlation_id_set; correlation_id_set('req-9'); "
        "logging.getLogger('returns').warning('paper logged for %s', 'return 5')"
    )
    result = run_fresh_django(code, env=env)
    assert result.returncode == 0, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_production_logs_one_json_object_per_line_with_the_id():
    line = json.loads(
        _log_one_line(
            DJANGO_DEBUG="false",
            DJANGO_SECRET_KEY="x" * 50,
            DJANGO_ALLOWED_HOSTS="billing.example.com",
        )
    )
    assert line["message"] == "paper logged for return 5"
    assert (line["level"], line["logger"], line["correlation_id"]) == (
        "WARNING",
        "returns",
        "req-9",
    )
    assert line["time"].endswith("+00:00")


def test_development_logs_a_readable_line_with_the_id():
    line = _log_one_line(DJANGO_DEBUG="true")
    assert line.endswith(" WARNING [req-9] returns paper logged for return 5")
