"""Run callables at the same instant in threads, each with its own database connection."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def run_concurrently(*calls: Callable[[], Any], timeout: float = 60) -> list[Any]:
    """Start every call behind one barrier; return each result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results
