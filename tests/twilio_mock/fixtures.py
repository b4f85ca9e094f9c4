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

import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
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


def _start_prism(workdir: Path) -> tuple[subprocess.Popen, str]:
    """Start Prism on a free port, serving the description with Twilio's errors, and wait
    until it listens; fail the test, saying why, if it cannot."""
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
    served_spec = _spec_with_twilio_errors(spec, workdir)
    port = free_port()
    log_path = workdir / "prism.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(PRISM), "mock", "-p", str(port), "-h", "127.0.0.1", str(served_spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # shared by the run's workers: not stopped by one's Ctrl-C
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not _port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            output = log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
            reason = (
                f"exited with {process.returncode}"
                if process.returncode is not None and process.returncode >= 0
                else f"did not listen on port {port} within {STARTUP_TIMEOUT_SECONDS}s"
            )
            pytest.fail(f"The Prism mock of Twilio {reason}. Its output:\n{output}")
        time.sleep(0.2)
    return process, f"http://127.0.0.1:{port}"


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- one Prism for the whole run -------------------------------------------------------------
# Prism takes ~1.5 s of CPU to start and its first requests each compile validators. Under
# pytest-xdist the first worker that needs the mock starts it and writes its address to a
# folder the controller made for the run (passed in ``workerinput``); the other workers use the
# same server, and the controller stops it when the run ends. Without xdist the fixture starts
# and stops its own.
SHARED_KEY = "twilio_mock_dir"
STATE_FILE = "prism.json"


class SharedPrism:
    """The controller's side (registered only in a run with xdist workers)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="twilio-mock-"))

    def pytest_configure_node(self, node) -> None:
        node.workerinput[SHARED_KEY] = str(self.folder)

    def pytest_unconfigure(self) -> None:
        state = self.folder / STATE_FILE
        if state.is_file():
            pid = json.loads(state.read_text())["pid"]
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):  # up to 5 s, then no mercy
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    controller = not hasattr(config, "workerinput")
    if controller and getattr(config.option, "numprocesses", None):
        config.pluginmanager.register(SharedPrism(), "invoice-returns-shared-prism")


def _shared_prism(folder: Path) -> str:
    """The run's Prism: started here if no worker has started it yet."""
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker starts it; the others wait, then read
        state = folder / STATE_FILE
        if state.is_file():
            return json.loads(state.read_text())["url"]
        process, url = _start_prism(folder)
        state.write_text(json.dumps({"url": url, "pid": process.pid}))
        return url


@pytest.fixture(scope="session")
def twilio_mock_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Prism's base URL: the run's shared server under xdist, or one of this session's own."""
    shared = getattr(request.config, "workerinput", {}).get(SHARED_KEY)
    if shared:
        yield _shared_prism(Path(shared))
        return
    process, url = _start_prism(tmp_path_factory.mktemp("twilio_mock"))
    try:
        yield url
    finally:
        _stop(process)


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
