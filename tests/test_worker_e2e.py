"""End to end with a real Celery worker process on the Redis broker."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from invoices.models import InvoiceState, LedgerEntry, LedgerKind
from notifications.models import SmsMessage, SmsPurpose
from returns.models import ReturnRequest, ReturnState
from tests.factories import CustomerFactory, UserFactory, issue_invoice
from tests.returns_helpers import log_paper, submit
from tests.services_check import require_redis

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER'] or 'postgres'}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}"
        f":{db['PORT'] or 5432}/{db['NAME']}"
    )


@pytest.fixture
def celery_on_redis(redis_url):
    """Point this process's Celery at Redis (not eager) and flush the test broker DB."""
    import redis

    require_redis(redis_url)
    redis.Redis.from_url(redis_url).flushdb()
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url=redis_url, task_always_eager=False)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    yield redis_url
    celery_app.conf.update(saved)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def worker(celery_on_redis, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": celery_on_redis,
        "SMS_BACKEND": "memory",
        "PRIVATE_MEDIA_ROOT": str(tmp_path),
    }
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default,returns,sms",
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
            "-n",
            f"e2e-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    connection.close()


def _wait_for(predicate, timeout: float, worker_proc, log_path: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker_proc.poll() is not None:
            break
        time.sleep(0.25)
    pytest.fail(f"timed out; worker log:\n{log_path.read_text()[-4000:]}")


def test_r4_r6_r7_r8_a_real_worker_on_redis_completes_the_return(worker, tmp_path):
    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    customer = CustomerFactory()
    invoice = issue_invoice(customer)
    finance = UserFactory(username="finance-e2e", is_staff=True)
    rr = submit(invoice)
    log_paper(invoice, finance)  # commits → the task goes to Redis → the worker runs it

    def done() -> bool:
        rr.refresh_from_db()
        sms = SmsMessage.objects.filter(
            related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED
        ).first()
        return rr.state == ReturnState.COMPLETED and sms is not None and sms.status == "sent"

    _wait_for(done, 90, worker, tmp_path / "worker.log")
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.VOIDED
    assert (
        LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED).count() == 1
    )
    assert (
        SmsMessage.objects.filter(
            related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED
        ).count()
        == 1
    )
    assert ReturnRequest.objects.get(pk=rr.pk).outcome == "voided"
