"""P3's floor: a bare Celery app whose one task sends the SMS through the twilio SDK to the same
Prism, in the worker configuration P3 measures the app in (prefork, acks late, prefetch 1, no
results). No Django, no database, no outbox: what one task per return costs on this machine
before any of the app's work (bench/run.py prints it beside P3's rate).

Each finished task increments ``floor:done`` in the broker's Redis; the harness counts them.
"""

import os
from typing import Any

import redis
from celery import Celery
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

BROKER = os.environ["FLOOR_BROKER_URL"]
TWILIO_BASE = os.environ.get("FLOOR_TWILIO_BASE", "").rstrip("/")
TWILIO_ORIGIN = "https://api.twilio.com"
DONE = "floor:done"

# Not the current app: the harness that publishes these tasks also publishes the app's own
# (through Celery's current app) in the same process.
app = Celery("bench_floor", broker=BROKER, set_as_current=False)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)


class _ToPrism(TwilioHttpClient):
    """The SDK's own HTTP client, sent to Prism instead of Twilio."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_ORIGIN):
            url = TWILIO_BASE + url[len(TWILIO_ORIGIN) :]
        return super().request(method, url, *args, **kwargs)


_client: Client | None = None
_counter: redis.Redis | None = None


@app.task(name="bench_floor.sms")
def sms(to: str, sender: str, body: str, account_sid: str, auth_token: str) -> None:
    global _client, _counter
    if _client is None:  # once per worker process, as the app's backend does
        _client = Client(account_sid, auth_token, http_client=_ToPrism(timeout=10))
        _counter = redis.Redis.from_url(BROKER)
    _client.messages.create(to=to, from_=sender, body=body)
    assert _counter is not None  # noqa: S101 (set with the client)
    _counter.incr(DONE)
