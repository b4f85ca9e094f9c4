"""A recording front for the Prism mock: counts what reached "Twilio", and remembers it.

Prism validates every request against Twilio's description but keeps no state: a message
created is not listed or fetched afterwards, so a look-up (``find_sent``, ``fetch_status``)
could never find what was sent. This front, a small HTTP server in the test process, forwards
every request to Prism (which still validates it; a refusal is passed back as is) and:

- records each message created (To, Body, the SID Prism gave), so a test counts the messages
  that reached the mock per text: 0 sent twice, none missing;
- answers the list and fetch requests from those records, in Twilio's shape, once Prism has
  accepted the request;
- calls ``on_create`` while a create request is in flight, before answering it: a fault test
  terminates the worker's database connections there, exactly while Twilio holds the message
  and the worker waits for the answer.
"""

import email.utils
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
_MESSAGE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$")
_HOP_BY_HOP = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}


@dataclass
class Created:
    sid: str
    to: str
    body: str
    sender: str
    created: datetime


@dataclass
class RecordingTwilio:
    prism_url: str
    on_create: Callable[[], None] = lambda: None
    created: list[Created] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[str]:
        with self._lock:
            return [message.body for message in self.created]

    def _record(self, message: Created) -> None:
        with self._lock:
            self.created.append(message)

    def _find(self, *, to: str | None = None, sid: str | None = None) -> list[Created]:
        with self._lock:
            return [
                m
                for m in self.created
                if (to is None or m.to == to) and (sid is None or m.sid == sid)
            ]


def _as_twilio(message: Created, account: str) -> dict[str, object]:
    date = email.utils.format_datetime(message.created).replace("-0000", "+0000")
    uri = f"/2010-04-01/Accounts/{account}/Messages/{message.sid}.json"
    return {
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": message.body,
        "date_created": date,
        "date_sent": date,
        "date_updated": date,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": message.sender,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": "sent",
        "subresource_uris": {},
        "to": message.to,
        "uri": uri,
    }


def _handler(recorder: RecordingTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _forward(self, body: bytes | None, extra: dict[str, str]) -> requests.Response:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            return requests.request(
                self.command,
                recorder.prism_url + self.path,
                headers={**headers, **extra},
                data=body,
                timeout=30,
            )

        def _answer(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _json(self, status: int, document: object) -> None:
            self._answer(status, json.dumps(document).encode(), "application/json")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            path = urlsplit(self.path).path
            # A SID of its own for each message (Prism's static example has one fixed SID).
            answer = self._forward(body, {"Prefer": "dynamic=true"})
            if _MESSAGES.match(path) and answer.status_code == 201:
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                document = answer.json()
                recorder._record(
                    Created(
                        sid=document["sid"],
                        to=form["To"],
                        body=form["Body"],
                        sender=form.get("From", ""),
                        created=datetime.now(UTC),
                    )
                )
                recorder.on_create()  # Twilio has the message; the caller still waits
                document["status"] = "queued"
                self._json(201, document)
                return
            self._answer(answer.status_code, answer.content, answer.headers["Content-Type"])

        def do_GET(self) -> None:
            answer = self._forward(None, {})
            parts = urlsplit(self.path)
            listing, single = _MESSAGES.match(parts.path), _MESSAGE.match(parts.path)
            if answer.status_code != 200 or not (listing or single):
                self._answer(answer.status_code, answer.content, answer.headers["Content-Type"])
                return
            if single:
                found = recorder._find(sid=single["sid"])
                if not found:
                    self._json(404, {"code": 20404, "message": "Not found", "status": 404})
                    return
                self._json(200, _as_twilio(found[0], single["account"]))
                return
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            account = listing["account"]
            messages = [
                _as_twilio(m, account) for m in reversed(recorder._find(to=query.get("To")))
            ]
            self._json(
                200,
                {
                    "messages": messages,
                    "start": 0,
                    "end": max(len(messages) - 1, 0),
                    "page": 0,
                    "page_size": len(messages),
                    "uri": parts.path,
                    "first_page_uri": parts.path,
                    "next_page_uri": None,
                    "previous_page_uri": None,
                },
            )

    return Handler


@contextmanager
def recording_twilio(prism_url: str, *, port: int) -> Iterator[RecordingTwilio]:
    """Serve the recording front on 127.0.0.1:``port`` for the duration of the block."""
    recorder = RecordingTwilio(prism_url=prism_url)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(recorder))
    recorder.url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
