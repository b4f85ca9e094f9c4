"""A correlation id follows one piece of work through web, worker and SMS.

The web request takes the caller's ``X-Request-ID`` (or makes one) in ``CorrelationIdMiddleware``;
every task published while it is current carries it in a message header
(``before_task_publish``) and the worker makes it current again while the task runs
(``task_prerun``), so tasks that task enqueues carry it on. Log lines show it
(``CorrelationIdFilter``) and the SMS row stores it (``SmsMessage.correlation_id``).
"""

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from django.core.signals import request_finished

if TYPE_CHECKING:  # imported by the Celery app at settings time: nothing Django loads here
    from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
# The header as WSGI gives it: read from ``request.META``, so that no request builds
# ``request.headers`` (every header's name rewritten) for this one (issue 16, P1).
_META_KEY = "HTTP_X_REQUEST_ID"
# The Celery message header; the worker exposes it as ``task.request.x_request_id``. (Not
# "correlation_id": Celery's own request attribute of that name holds the task id.)
TASK_HEADER = "x_request_id"
# A caller's id is kept only when it is short and plain: it is logged and stored as given.
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_current: ContextVar[str] = ContextVar("correlation_id", default="")


def correlation_id() -> str:
    """The current correlation id, or "" outside any request or task."""
    return _current.get()


def correlation_id_new() -> str:
    return uuid.uuid4().hex


def correlation_id_accept(value: str | None) -> str:
    """The caller's id when it is acceptable, else a new one."""
    if value and _ACCEPTED.match(value):
        return value
    return correlation_id_new()


def correlation_id_set(value: str) -> Token[str]:
    return _current.set(value)


def correlation_id_reset(token: Token[str]) -> None:
    _current.reset(token)


class CorrelationIdMiddleware:
    """Make the request's id current for its whole handling, and answer it in the response."""

    def __init__(self, get_response: Callable[["HttpRequest"], "HttpResponse"]) -> None:
        self.get_response = get_response

    def __call__(self, request: "HttpRequest") -> "HttpResponse":
        value = correlation_id_accept(request.META.get(_META_KEY))
        correlation_id_set(value)  # cleared when the response is finished (below)
        response = self.get_response(request)
        response[HEADER] = value
        return response


def _request_finished_clear(**_: Any) -> None:
    """Django logs a request's outcome ("Not Found: /x") after the middleware has returned:
    the id stays current until the response is finished, then nothing carries it on."""
    _current.set("")


request_finished.connect(_request_finished_clear, dispatch_uid="core.correlation.clear")


# --- Celery: the id travels in the message ------------------------------------------------------


def task_publish_add_correlation_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish``: the current id goes into the message's headers."""
    value = correlation_id()
    if headers is not None and value and not headers.get(TASK_HEADER):
        headers[TASK_HEADER] = value


# The tokens to restore after each running task, by task id (eager tasks nest in one thread).
_task_tokens: dict[str, Token[str]] = {}


def task_prerun_restore_correlation_id(
    task_id: str | None = None, task: Any = None, **_: Any
) -> None:
    """``task_prerun``: the message's id becomes current while the task runs. A task run in
    the publisher's own thread (eager mode) keeps the current one; a task with neither (beat)
    gets a new one."""
    carried = getattr(getattr(task, "request", None), TASK_HEADER, None)
    value = carried or correlation_id() or correlation_id_new()
    token = correlation_id_set(value)
    if task_id is not None:
        _task_tokens[task_id] = token


def task_postrun_reset_correlation_id(task_id: str | None = None, **_: Any) -> None:
    token = _task_tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        correlation_id_reset(token)
