"""Production's workers keep their database connection between tasks (CONN_MAX_AGE) and replace
one that was closed under them before using it (CONN_HEALTH_CHECKS): a real worker on Redis,
sending SMS (the in-memory backend), with persistent connections as in production."""

import psycopg
import pytest
from django.db import connection, transaction

from notifications.models import SmsMessage, SmsPurpose, SmsStatus
from notifications.services import sms_message_queue
from tests.processes import celery_publishing_to, database_url, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def queue(first: int, count: int) -> None:
    with transaction.atomic():  # published to Redis when this commits
        for n in range(first, first + count):
            sms_message_queue(
                to=f"+86138002{n:05d}",
                body=f"发票 {30000000 + n} 退回成功。",
                purpose=SmsPurpose.RETURN_COMPLETED,
                idempotency_key=f"return:{n}:return_completed",
                related_return_id=n,
            )


def test_the_worker_reuses_its_connection_and_replaces_one_that_was_terminated(
    private_redis, start_worker
):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    observer = psycopg.connect(database_url(), autocommit=True)
    spare = [own_pid, observer.info.backend_pid]
    (worker_started,) = observer.execute("SELECT now()").fetchone()

    def worker_connections() -> list[int]:
        # Connections opened since the worker started (earlier tests may have left some),
        # but for the one of the main process's outbox lease keeper (core/outbox.py), a
        # thread of its own that only ever renews leases.
        rows = observer.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> ALL(%s) AND state = 'idle' AND backend_start >= %s "
            'AND query NOT LIKE \'UPDATE "core_outboxmessage" SET "lease_until"%%\'',
            [spare, worker_started],
        ).fetchall()
        return [pid for (pid,) in rows]

    def all_sent(count: int) -> bool:
        return SmsMessage.objects.filter(status=SmsStatus.SENT).count() == count

    try:
        with celery_publishing_to(private_redis.url):
            worker = start_worker(
                broker_url=private_redis.url,
                name="persistent",
                env={"DATABASE_CONN_MAX_AGE": "60", "DATABASE_CONN_HEALTH_CHECKS": "true"},
            )
            queue(0, 3)
            wait_for(lambda: all_sent(3), timeout=60, what="3 SMS sent", processes=(worker,))
            wait_for(
                lambda: len(worker_connections()) == 1,
                timeout=20,
                what="the worker's one idle connection",
                processes=(worker,),
            )
            (kept,) = worker_connections()

            queue(3, 3)
            wait_for(lambda: all_sent(6), timeout=60, what="6 SMS sent", processes=(worker,))
            assert worker_connections() == [kept]  # the same connection served every task

            observer.execute("SELECT pg_terminate_backend(%s)", [kept])
            queue(6, 3)
            wait_for(lambda: all_sent(9), timeout=60, what="9 SMS sent", processes=(worker,))
            wait_for(
                lambda: len(worker_connections()) == 1,
                timeout=20,
                what="the worker's new idle connection",
                processes=(worker,),
            )
            replaced = worker_connections()
            log = worker.log_tail(100_000)
    finally:
        observer.close()

    assert replaced != [kept]
    # The health check replaced the dead connection before the task used it: no task failed
    # or was retried for it.
    assert "unreachable" not in log
    assert "Retry" not in log
    assert SmsMessage.objects.filter(status=SmsStatus.SENT).count() == 9
