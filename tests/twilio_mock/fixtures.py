"""Fixtures for SMS tests: a Prism mock of Twilio's API, and the in-memory outbox.

Prism serves Twilio's own OpenAPI description (``../shared/twilio/twilio_api_v2010.json``
beside the checkout, as CI lays it out, or ``TWILIO_OPENAPI_SPEC``) and validates every request
against it, so a request the real SDK builds wrongly fails here as it would at Twilio. The
contract tests never skip: when the description or Prism is missing, or Prism does not start,
they fail and say why.

Twilio's description declares only the 201 answer for creating a message, and Prism answers
``Prefer: code=400`` for an undeclared code with its own 404 ("not defined in the document").
To exercise our error handling through the SDK, the mock serves a temporary copy of the
description in which the create-message operation also declares the errors Twilio documents
for it (400, 429, 500) with Twilio's error body (``code``, ``message``, ``more_info``,
``status``). Codes the description already declares are left as they are. Requests are still
validated against Twilio's description; an invalid one is now answered with the declared 400
instead of Prism's own 422, and Prism names the broken rule in the ``sl-violations`` header.
"""

import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifications.backends import outbox
from tests.processes import free_port

MOCK_DIR = Path(__file__).resolve().parent
REPO_DIR = MOCK_DIR.parent.parent
PRISM = MOCK_DIR / "node_modules" / ".bin" / "prism"
DEFAULT_SPEC = REPO_DIR.parent / "shared" / "twilio" / "twilio_api_v2010.json"
# twilio/twilio-oai, spec/json/twilio_api_v2010.json at d50069b44ea8cd23141385bdb6db48f16ff75bb5
DEFAULT_SPEC_SHA256 = "99cae87a6bb1725f71363364cbd30282a13140374b2d5f9bdd5bdfa5d4c8a6d7"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
STARTUP_TIMEOUT_SECONDS = 60

# Twilio's documented error answers for message creation (https://www.twilio.com/docs/errors).
TWILIO_ERRORS = {
    "400": (21211, "Invalid 'To' Phone Number: +15005550001"),
    "429": (20429, "Too Many Requests"),
    "500": (20500, "Internal Server Error"),
}


def _spec_with_twilio_errors(spec: Path, into: Path) -> Path:
    document = json.loads(spec.read_text(encoding="utf-8"))
    responses = document["paths"][MESSAGES_PATH]["post"]["responses"]
    error_schema = {
        "type": "object",
        "required": ["code", "message", "more_info", "status"],
        "properties": {
            "code": {"type": "integer"},
            "message": {"type": "string"},
            "more_info": {"type": "string"},
            "status": {"type": "integer"},
        },
    }
    for status, (code, message) in TWILIO_ERRORS.items():
        responses.setdefault(
            status,
            {
                "description": message,
                "content": {
                    "application/json": {
                        "schema": error_schema,
                        "example": {
                            "code": code,
                            "message": message,
                            "more_info": f"https://www.twilio.com/docs/errors/{code}",
                            "status": int(status),
                        },
                    }
                },
            },
        )
    path = into / "twilio_api_v2010_with_errors.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def twilio_mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start Prism on a free port for the session; yield its base URL."""
    spec = Path(os.environ.get("TWILIO_OPENAPI_SPEC", DEFAULT_SPEC))
    if not spec.is_file():
        pytest.fail(f"Twilio's OpenAPI description is missing at {spec}.", pytrace=False)
    if spec == DEFAULT_SPEC:
        digest = hashlib.sha256(spec.read_bytes()).hexdigest()
        if digest != DEFAULT_SPEC_SHA256:
            pytest.fail(
                f"{spec} is not the description the contract tests were written against "
                f"(sha256 {digest}, expected {DEFAULT_SPEC_SHA256}).",
                pytrace=False,
            )
    if not PRISM.is_file():
        pytest.fail(
            f"Prism is not installed at {PRISM}: run `npm ci --prefix tests/twilio_mock` "
            "(make test does).",
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("twilio_mock")
    served_spec = _spec_with_twilio_errors(spec, workdir)
    port = free_port()
    log_path = workdir / "prism.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(PRISM), "mock", "-p", str(port), "-h", "127.0.0.1", str(served_spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not _port_open(port):
            if process.poll() is not None or time.monotonic() > deadline:
                output = log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
                reason = (
                    f"exited with {process.returncode}"
                    if process.returncode is not None
                    else f"did not listen on port {port} within {STARTUP_TIMEOUT_SECONDS}s"
                )
                pytest.fail(f"The Prism mock of Twilio {reason}. Its output:\n{output}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def sms_outbox() -> Iterator[list[dict[str, str | None]]]:
    """The in-memory backend's outbox, empty at the start and end of the test."""
    outbox.clear()
    yield outbox
    outbox.clear()


@pytest.fixture
def twilio(settings, twilio_mock_url: str) -> str:
    """Settings that send SMS with the real Twilio SDK to the Prism mock, from a number."""
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_API_BASE = twilio_mock_url
    settings.TWILIO_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
    settings.TWILIO_AUTH_TOKEN = "test-auth-token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.PUBLIC_BASE_URL = "https://portal.example.com"
    return twilio_mock_url
