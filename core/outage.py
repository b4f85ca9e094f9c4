"""One warning per outage, not one per retry.

When the database, the broker or Twilio goes away, every task in flight fails and retries with
backoff: logging each failure buries the one line an operator needs under thousands of
copies. An ``OutageLog`` logs the first failure of a run as a WARNING, counts the rest at
DEBUG, reminds every ``remind_every`` seconds while the outage lasts, and logs once (INFO) with
the count when a later call succeeds. State is per process (each worker child has its own).
Our own code calls it (the SMS send, the task outbox); the lines Celery and kombu write
themselves on every retry and reconnection are collapsed by ``core.logging.RepeatedLinesFilter``.
"""

import logging
import threading
import time
from collections.abc import Callable


class OutageLog:
    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        remind_every: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.remind_every = remind_every
        self.clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.started: float | None = None
        self.last_warned = 0.0
        self.errors = 0

    @property
    def in_progress(self) -> bool:
        return self.started is not None

    def failed(self, exc: BaseException) -> None:
        """Count one failure; log it only if it opens an outage or a reminder is due."""
        with self._lock:
            now = self.clock()
            self.errors += 1
            error = f"{exc.__class__.__name__}: {str(exc).strip()}"
            if self.started is None:
                self.started = self.last_warned = now
                self.logger.warning(
                    "%s unreachable (%s); retrying with backoff. Further errors are counted, "
                    "not logged, until it recovers.",
                    self.what,
                    error,
                )
            elif now - self.last_warned >= self.remind_every:
                self.last_warned = now
                self.logger.warning(
                    "%s still unreachable: %d errors in %.0f s (latest: %s).",
                    self.what,
                    self.errors,
                    now - self.started,
                    error,
                )
            else:
                self.logger.debug("%s unreachable (%s).", self.what, error)

    def recovered(self) -> None:
        """A call succeeded: close the outage with one line, if one was open."""
        if self.started is None:  # the common case, without taking the lock
            return
        with self._lock:
            if self.started is None:
                return
            self.logger.info(
                "%s reachable again after %d errors over %.0f s.",
                self.what,
                self.errors,
                self.clock() - self.started,
            )
            self.reset()
