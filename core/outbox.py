"""The task outbox: recovery driven by events, not by the age of a row.

A service that enqueues a task (``core.enqueue.enqueue_on_commit``) writes an
``OutboxMessage`` in its own transaction, so the task exists exactly when the change it follows
committed. Then:

1. **Publish on commit.** Right after the commit the row is published (message header
   ``outbox_id``) and marked published with a *queued lease* (``OUTBOX_QUEUED_LEASE_SECONDS``).
   A broker error is not the user's problem: it is logged once per outage and the row waits
   for the relay. After a failure this process leaves publishing to the relay for a few
   seconds, so requests committing during an outage do not each wait for the broker.
2. **Held by a worker.** A worker's main process pushes the lease of every message it holds
   (prefetched, running, or waiting for a countdown) ``OUTBOX_LEASE_SECONDS`` ahead, every third
   of that (``OutboxLeaseKeeper``). When the task finishes (success, or final failure) the pool
   process deletes the row; a retry carries the header on, so the row follows the task until
   it is done.
3. **The relay** (``manage.py outbox_relay``, a process of its own) looks every
   ``OUTBOX_RELAY_INTERVAL_SECONDS`` for rows never published (the broker was down at commit)
   and rows whose lease ran out (the worker holding the message died: its main process stopped
   renewing; or the task gave up on a database error), and publishes them (again). While the
   broker is down it tries again at every round. It also notices a Redis that restarted (its
   ``run_id`` changed; what it held may be gone) and publishes again everything not finished.

Every task is idempotent (locks, re-checked states, unique keys), so publishing a row twice
costs a second run that changes nothing; losing one is what this prevents. In eager mode
(development, tests) nothing of this runs: tasks run on commit as before.
"""

import logging
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from datetime import timedelta
from functools import cache
from typing import Any

from celery import Task, current_app, states
from celery._state import get_current_task
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from core import sql
from core.correlation import correlation_id, correlation_id_reset, correlation_id_set
from core.models import OutboxMessage
from core.outage import OutageLog

logger = logging.getLogger(__name__)

# The message header that ties a task message to its row (``task.request.outbox_id``).
HEADER = "outbox_id"

# One warning per outage in each process, not one per failed publish or query.
broker_outage = OutageLog(logger, "The broker (publishing tasks)", remind_every=60.0)
database_outage = OutageLog(logger, "The database (task outbox)", remind_every=60.0)

# Database errors after which a finished task's row is kept for the relay, not deleted: the
# task gave up because the database was away, not because of the work itself.
_DATABASE_GAVE_UP = ("OperationalError", "InterfaceError", "SmsOutcomeNotRecorded")

_publishing_paused_until = 0.0


def outbox_enabled(task: Task | None = None) -> bool:
    """False in eager mode (no broker): tasks run in process, on commit, as before."""
    app = task.app if task is not None else current_app
    return not app.conf.task_always_eager


@cache
def _statement(name: str) -> str:
    """The fast path's three statements, written out (``core.sql``): every task a return's
    processing queues runs them once each, and building them through the ORM cost more CPU
    than running them (issue 16, P3). Identifiers from the model's metadata; every value is a
    parameter."""
    quote = connection.ops.quote_name
    table = quote(OutboxMessage._meta.db_table)
    column = {f.attname: quote(str(f.column)) for f in OutboxMessage._meta.concrete_fields}
    return {
        "insert": (
            f"INSERT INTO {table} ({sql.insert_columns(OutboxMessage)}) "  # noqa: S608
            f"VALUES ({sql.insert_placeholders(OutboxMessage)}) RETURNING {column['id']}"
        ),
        # Unless a worker took the message meanwhile and already set a (short) lease.
        "published": (
            f"UPDATE {table} SET {column['published_at']} = %s, "  # noqa: S608
            f"{column['publish_count']} = {column['publish_count']} + 1, "
            f"{column['lease_until']} = %s "
            f"WHERE {column['id']} = %s AND {column['published_at']} IS NULL"
        ),
        "finished": f"DELETE FROM {table} WHERE {column['id']} = %s",  # noqa: S608
    }[name]


def outbox_add(
    task_name: str, args: Iterable[Any], *, countdown: float | None = None
) -> OutboxMessage:
    """Write the row in the current transaction."""
    message = OutboxMessage(
        task=task_name,
        args=list(args),
        correlation_id=correlation_id(),
        run_at=timezone.now() + timedelta(seconds=countdown or 0),
    )
    with sql.prepared_cursor() as cursor:
        cursor.execute(_statement("insert"), sql.insert_values(message))
        return sql.saved(message, cursor.fetchone()[0])


def _send(message: OutboxMessage) -> None:
    """Hand the row's task to the broker (raises ``BrokerError`` when it is down)."""
    countdown = (message.run_at - timezone.now()).total_seconds()
    token = correlation_id_set(message.correlation_id) if message.correlation_id else None
    try:
        current_app.send_task(
            message.task,
            args=list(message.args),
            countdown=countdown if countdown > 0 else None,
            headers={HEADER: message.pk},
        )
    finally:
        if token is not None:
            correlation_id_reset(token)


def _queued_lease_until(message: OutboxMessage) -> Any:
    now = timezone.now()
    start = max(now, message.run_at)
    return start + timedelta(seconds=settings.OUTBOX_QUEUED_LEASE_SECONDS)


def outbox_publish_now(message: OutboxMessage) -> bool:
    """The fast path, run on commit: publish the row now and mark it published. False when
    the broker refused (or was refused a moment ago): the relay publishes it."""
    global _publishing_paused_until
    if time.monotonic() < _publishing_paused_until:
        return False
    try:
        _send(message)
    except BrokerError as exc:
        _publishing_paused_until = time.monotonic() + settings.OUTBOX_PUBLISH_PAUSE_SECONDS
        broker_outage.failed(exc)
        return False
    broker_outage.recovered()
    message_id = message.pk
    try:
        with sql.prepared_cursor() as cursor:
            cursor.execute(
                _statement("published"),
                [timezone.now(), _queued_lease_until(message), message_id],
            )
    except DatabaseError as exc:  # published all the same; the relay may publish it twice
        logger.warning("Outbox row %s published but not marked (%s).", message_id, exc)
    return True


def outbox_enqueue(
    task_name: str, args: Iterable[Any], *, countdown: float | None = None
) -> list[bool]:
    """Write the row now and publish it once the current transaction commits (at once when
    there is none). The list gets the publish's outcome when it has run."""
    message = outbox_add(task_name, args, countdown=countdown)
    current = correlation_id()
    outcome: list[bool] = []

    def publish() -> None:
        token = correlation_id_set(current) if current else None
        try:
            outcome.append(outbox_publish_now(message))
        finally:
            if token is not None:
                correlation_id_reset(token)

    transaction.on_commit(publish)
    return outcome


# --- the relay --------------------------------------------------------------------------------


def outbox_due() -> "Any":
    """Rows the relay publishes: never published (and past the fast path's grace), or
    published with a lease that ran out."""
    now = timezone.now()
    grace = timedelta(seconds=settings.OUTBOX_PUBLISH_GRACE_SECONDS)
    return OutboxMessage.objects.filter(
        Q(published_at__isnull=True, created_at__lt=now - grace)
        | Q(published_at__isnull=False, lease_until__lt=now)
    )


@transaction.atomic
def outbox_relay_once(*, batch: int = 500) -> tuple[int, int]:
    """One round of the relay: publish what is due. Returns (published for the first time,
    published again after a lease ran out). A broker error ends the round (logged once per
    outage); the next round tries again."""
    due = list(outbox_due().order_by("run_at").select_for_update(skip_locked=True)[:batch])
    first: list[OutboxMessage] = []
    again: list[OutboxMessage] = []
    for message in due:
        try:
            _send(message)
        except BrokerError as exc:
            broker_outage.failed(exc)
            break
        (again if message.published_at else first).append(message)
    for message in first + again:
        OutboxMessage.objects.filter(pk=message.pk).update(
            published_at=timezone.now(),
            publish_count=F("publish_count") + 1,
            lease_until=_queued_lease_until(message),
        )
    if first or again:
        broker_outage.recovered()
        logger.info(
            "outbox relay: published %d task(s) not published at commit, %d again whose "
            "worker did not finish them in time.",
            len(first),
            len(again),
            extra={"outbox_ids": [m.pk for m in first + again][:50]},
        )
    return len(first), len(again)


@transaction.atomic
def outbox_broker_restarted() -> int:
    """The broker restarted and may have lost the messages it held: every published row not
    yet finished is due again now. Returns how many."""
    count = OutboxMessage.objects.filter(
        published_at__isnull=False, lease_until__gt=timezone.now()
    ).update(lease_until=timezone.now())
    if count:
        logger.warning(
            "The broker restarted: %d task(s) published before may be lost; publishing them again.",
            count,
        )
    return count


def broker_identity() -> str | None:
    """An id of the running broker server that changes when it restarts (Redis's
    ``run_id``); None for a transport that has none. Raises ``BrokerError`` when down."""
    with current_app.connection_for_write() as conn:
        channel = conn.default_channel  # connects, or raises when the broker is down
        if getattr(conn.transport, "driver_type", "") != "redis":
            return None
        info = channel.client.info("server")  # type: ignore[attr-defined]  # redis channel
        return str(info.get("run_id") or "") or None


def close_broken_connections() -> None:
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            with suppress(DatabaseError):
                conn.close_if_unusable_or_obsolete()


def outbox_relay_forever(*, interval: float, stop: threading.Event | None = None) -> None:
    """The relay loop (``manage.py outbox_relay``): a round every ``interval`` seconds until
    ``stop`` is set; an outage of the broker or the database is logged once and waited out."""
    stop = stop or threading.Event()
    known_broker: str | None = None
    while not stop.is_set():
        try:
            identity = broker_identity()
            if known_broker is not None and identity is not None and identity != known_broker:
                outbox_broker_restarted()
            known_broker = identity or known_broker
            outbox_relay_once()
            database_outage.recovered()
        except BrokerError as exc:
            broker_outage.failed(exc)
        except DatabaseError as exc:
            database_outage.failed(exc)
            close_broken_connections()
        except Exception as exc:  # the redis client's own errors, anything unexpected
            if type(exc).__module__.startswith("redis"):
                broker_outage.failed(exc)
            else:
                logger.exception("outbox relay: unexpected error; going on.")
        stop.wait(interval)


# --- the worker: carry the header, keep leases, delete finished rows ----------------------------


def _outbox_id(request: Any) -> int | None:
    value = getattr(request, HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(HEADER)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def task_publish_keep_outbox_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish``: a task's retry (same task id, published from inside it)
    carries the row on, so the row follows the task until it is finally done."""
    if headers is None or headers.get(HEADER) is not None:
        return
    running = get_current_task()
    if running is None or running.request.id != headers.get("id"):
        return
    carried = _outbox_id(running.request)
    if carried is not None:
        headers[HEADER] = carried


def task_postrun_settle_outbox(
    task: Task | None = None, state: str | None = None, retval: Any = None, **_: Any
) -> None:
    """``task_postrun`` (in the process that ran it): a finished task's row is deleted. Kept
    for the relay: a retry (it follows the task), and a task that gave up on the database."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    outbox_id = _outbox_id(task.request)
    if outbox_id is None or state in (states.RETRY, states.REJECTED):
        return
    if state == states.FAILURE and type(retval).__name__ in _DATABASE_GAVE_UP:
        return  # its lease runs out once no worker holds it; the relay publishes it again
    try:
        with sql.prepared_cursor() as cursor:
            cursor.execute(_statement("finished"), [outbox_id])
        database_outage.recovered()
    except DatabaseError as exc:
        # Left for the relay: the task runs once more and changes nothing.
        database_outage.failed(exc)
        close_broken_connections()


def _held_outbox_ids() -> set[int]:
    """The rows of the messages this worker holds: prefetched, running, or waiting for their
    countdown (Celery's own bookkeeping in the worker's main process)."""
    from celery.worker import state

    for _attempt in range(5):
        try:
            requests = [
                *state.active_requests,
                *state.reserved_requests,
                *state.scheduled_requests,  # type: ignore[attr-defined]  # Celery 5.7
            ]
            break
        except RuntimeError:  # a set changed size while read from this thread
            time.sleep(0.01)
    else:
        return set()
    ids = set()
    for request in requests:
        value = (getattr(request, "request_dict", None) or {}).get(HEADER)
        with suppress(TypeError, ValueError):
            if value is not None:
                ids.add(int(value))
    return ids


class OutboxLeaseKeeper(threading.Thread):
    """In the worker's main process: as soon as messages arrive, and then every
    ``OUTBOX_LEASE_SECONDS / 3``, push the lease of every row whose message this worker holds.
    When the main process dies (SIGKILL, OOM, the host) the leases run out within
    ``OUTBOX_LEASE_SECONDS`` and the relay publishes the tasks again, instead of their messages
    waiting in Redis's ``unacked`` for the visibility timeout."""

    def __init__(self) -> None:
        super().__init__(name="outbox-lease-keeper", daemon=True)
        self.stop = threading.Event()
        self.received = threading.Event()
        self.lease = timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)

    def renew(self) -> int:
        ids = _held_outbox_ids()
        if not ids:
            return 0
        now = timezone.now()
        try:
            # A row whose publisher has not marked it yet is marked here, so that its
            # publisher's mark (queued lease) does not overwrite this short one.
            count = OutboxMessage.objects.filter(pk__in=ids).update(
                lease_until=now + self.lease, published_at=Coalesce("published_at", now)
            )
        except DatabaseError as exc:
            database_outage.failed(exc)
            close_broken_connections()
            return 0
        database_outage.recovered()
        return count

    def run(self) -> None:
        period = self.lease.total_seconds() / 3
        while not self.stop.is_set():
            if self.received.wait(period):
                self.received.clear()
                time.sleep(0.1)  # messages come in bursts: one statement for the burst
            try:
                self.renew()
            except Exception:
                logger.exception("outbox lease keeper: unexpected error; going on.")


_keeper: OutboxLeaseKeeper | None = None


def task_received_renew_lease(request: Any = None, **_: Any) -> None:
    """``task_received`` (the worker's main process, its event loop): wake the keeper, which
    takes the lease of the new message at once. Nothing blocking here."""
    headers = getattr(request, "request_dict", None) or {}
    if _keeper is not None and headers.get(HEADER) is not None:
        _keeper.received.set()


def worker_ready_keep_leases(**_: Any) -> None:
    """``worker_ready`` (the worker's main process): start the lease keeper."""
    global _keeper
    if _keeper is None and outbox_enabled():
        _keeper = OutboxLeaseKeeper()
        _keeper.start()
