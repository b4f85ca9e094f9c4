"""Real processes for worker and fault tests: a private Redis server and Celery workers.

Fault tests break the services they use, so they start their own: a ``redis-server`` on a
spare port (never the machine's shared Redis) and worker processes on it, and stop them even
when the test fails. Registered as a pytest plugin in ``tests/conftest.py``.
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from django.db import connection

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent

# Settings a fresh interpreter must not inherit from the test run: the settings under test come
# only from the ``env`` the test passes.
_SETTINGS_ENV = ("DJANGO_", "DATABASE_URL", "EMAIL_URL", "LOG_", "CELERY_BROKER_URL", "SMS_BACKEND")


def run_fresh_django(
    script: str = "",
    *,
    manage: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a Python ``script`` (or ``manage.py`` with ``manage`` arguments) in a new
    interpreter on ``config.settings`` whose environment sets only what ``env`` says: how
    start-up, settings and logging behave is tested where the test process cannot reach."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_ENV)}
    command = [sys.executable, "manage.py", *manage] if manage else [sys.executable, "-c", script]
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


QUEUES = "default,returns,sms"


# Servers the tests start (redis-server, Prism) listen on ports from a band of their own per
# pytest-xdist worker, below Linux's ephemeral range (32768+): no other worker of this run
# picks from the band, and no outgoing connection or port-0 listener (live_server) is handed a
# port in it, so a port stays ours between the check and the server's bind, and a server
# stopped and started again (the Redis-down fault test) gets its port back. Each process starts
# at a random point of its band, so a second suite on the machine rarely walks the same ports.
PORT_BAND_START = 20000
PORT_BAND_SIZE = 1000
_next_port: int | None = None


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # unset without xdist: one band
    return int(worker.removeprefix("gw") or 0)


def free_port() -> int:
    """A port nothing listens on, from this xdist worker's band."""
    global _next_port
    low = PORT_BAND_START + PORT_BAND_SIZE * (_worker_index() % 12)  # 12 bands below 32768
    if _next_port is None:
        _next_port = low + random.randrange(PORT_BAND_SIZE)
    for _ in range(PORT_BAND_SIZE):
        port = low + (_next_port - low) % PORT_BAND_SIZE
        _next_port = port + 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {low}-{low + PORT_BAND_SIZE - 1}")


def database_url() -> str:
    """The test database, for processes started by the test."""
    db = connection.settings_dict
    return (
        f"postgres://{db['USER'] or 'postgres'}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}"
        f":{db['PORT'] or 5432}/{db['NAME']}"
    )


def wait_for(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    processes: tuple["Worker", ...] = (),
) -> None:
    """Poll until ``predicate()`` is true; fail with the workers' logs otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    logs = "\n".join(f"--- {w.name} ---\n{w.log_tail()}" for w in processes)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{logs}")


class RedisServer:
    """A throwaway ``redis-server`` on its own port, without persistence; stop/start keep it."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server).")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("ab")
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {self.port}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def queued(self, queue: str) -> int:
        import redis

        return redis.Redis.from_url(self.url).llen(queue)


class Worker:
    """A ``celery worker`` process (or another ``command``: the outbox relay) on the given
    broker, the test database and extra env."""

    def __init__(
        self,
        *,
        broker_url: str,
        workdir: Path,
        name: str,
        pool: str = "solo",
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "true",  # the development set-up, as in the test process
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url,
            "SMS_BACKEND": "memory",
            "PRIVATE_MEDIA_ROOT": str(workdir),
            **(env or {}),
        }
        if command is None:  # a Celery worker; another command (the outbox relay) as given
            command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", QUEUES]
            command += ["--pool", pool, "--without-heartbeat", "--without-gossip"]
            command += ["--without-mingle"]
            if pool == "prefork":
                command += ["--concurrency", "1"]
            command += ["-l", "INFO", "-n", f"{name}-{os.getpid()}@%h"]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
            )

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def pool_children(self) -> list[int]:
        """The prefork pool's child processes (the ones that run tasks)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill_pid(self, pid: int) -> None:
        """SIGKILL one of this worker's processes (e.g. a pool child)."""
        _kill(pid)

    def kill(self) -> None:
        """SIGKILL the worker and its children: no clean shutdown, no ack."""
        for pid in self.pool_children():
            _kill(pid)
        _kill(self.process.pid)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        children = self.pool_children()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pid in children:
            _kill(pid)


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextmanager
def celery_publishing_to(broker_url: str) -> Iterator[None]:
    """Make this process's Celery publish to ``broker_url`` instead of running tasks eagerly."""
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url=broker_url, task_always_eager=False)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    try:
        yield
    finally:
        celery_app.conf.update(saved)
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


RELAY = [sys.executable, "manage.py", "outbox_relay"]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own; stopped at the end even if the test fails."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start worker processes; every one is stopped (or killed) when the test ends."""
    started: list[Worker] = []

    def start(*, broker_url: str, name: str = "worker", **kwargs: object) -> Worker:
        worker = Worker(broker_url=broker_url, workdir=tmp_path, name=name, **kwargs)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        connection.close()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Report a fault test's figures: printed, and shown in the run's summary (``Fault-test
    figures``) with or without ``-s`` and under pytest-xdist, whose workers' output is not
    shown (the lines travel in the test report's ``user_properties``)."""

    def report(text: str) -> None:
        print(text)
        request.node.user_properties.append(("figures", text.strip()))

    return report


class TcpProxy:
    """A TCP proxy between processes the test starts and PostgreSQL, which the test takes
    down and brings back: ``down()`` closes every connection through it and refuses new ones
    (as a failover or a restart does), ``up()`` accepts again. The machine's PostgreSQL and
    everyone else's connections to it are never touched."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.connections = 0

    def up(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for end in sockets:
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def url_for(self, database_url: str) -> str:
        """``database_url`` (of the test database) through this proxy."""
        host_port = database_url.split("@", 1)[1].split("/", 1)[0]
        return database_url.replace(f"@{host_port}/", f"@127.0.0.1:{self.port}/")


@pytest.fixture
def database_proxy() -> Iterator[TcpProxy]:
    """A proxy to the test database's server, up; taken down at the end even if the test
    fails."""
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    proxy.up()
    try:
        yield proxy
    finally:
        proxy.down()
