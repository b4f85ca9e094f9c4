"""The outbox relay: publishes the tasks the outbox holds and no worker is seeing to."""

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from core.outbox import outbox_relay_forever, outbox_relay_once


class Command(BaseCommand):
    help = (
        "Publish outbox tasks that were not published at commit (broker down) or whose worker "
        "did not finish them within their lease (worker died), every "
        "OUTBOX_RELAY_INTERVAL_SECONDS until stopped (SIGTERM/SIGINT)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="One round, then exit.")

    def handle(self, *args: Any, once: bool = False, **options: Any) -> None:
        if once:
            first, again = outbox_relay_once()
            self.stdout.write(f"published {first}, again {again}")
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(
            f"outbox relay: a round every {settings.OUTBOX_RELAY_INTERVAL_SECONDS} s", ending="\n"
        )
        self.stdout.flush()
        outbox_relay_forever(interval=settings.OUTBOX_RELAY_INTERVAL_SECONDS, stop=stop)
