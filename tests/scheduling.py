"""Longest first: the order in which pytest-xdist hands out the suite's tests.

With ``--dist loadgroup`` each xdist group (``xdist_group``) is one unit of work and every
other test is a unit of its own; xdist hands the units out in collection order, a worker taking
the next one when it is nearly idle. A 30 s test collected near the end would start when the
other workers have run out of work, and the run would wait for it alone. So the units are put
in order of how long they took the last time (longest first: the long ones overlap the ~1,000
short ones, which fill the gaps at the end), with ``--no-loadscope-reorder`` (``make test``) so
that xdist keeps that order instead of its own (the units with the most tests first).

How long a test took comes from the previous runs, kept in pytest's cache
(``.pytest_cache/``, key ``invoice_returns/durations``: setup, call and teardown, seconds).
A test not seen before (a fresh clone, a new test) gets an estimate from what it starts:
Celery workers and other real processes (``worker``), a browser (``browser``, ``live_server``).
Registered as a pytest plugin in ``tests/conftest.py``; the order within a unit, and which
tests run, are unchanged.
"""

import pytest

CACHE_KEY = "invoice_returns/durations"
# Seconds, for a test the cache does not know yet (measured figures, rounded).
ESTIMATES = (("worker", 10.0), ("browser", 3.0))
SHORT = 0.1


def _key(nodeid: str) -> str:
    # pytest-xdist appends "@<group>" to a grouped test's id; the key is the same either way.
    return nodeid.split("@", 1)[0]


def _estimate(item: pytest.Item, durations: dict[str, float]) -> float:
    known = durations.get(_key(item.nodeid))
    if known is not None:
        return known
    for marker, seconds in ESTIMATES:
        if item.get_closest_marker(marker) is not None:
            return seconds
    if "live_server" in getattr(item, "fixturenames", ()):
        return ESTIMATES[1][1]
    return SHORT


def _unit(item: pytest.Item) -> str:
    groups = sorted(
        str(m.args[0] if m.args else m.kwargs.get("name", "default"))
        for m in item.iter_markers("xdist_group")
    )
    return "@" + "_".join(groups) if groups else item.nodeid


@pytest.hookimpl(trylast=True)  # after the xdist groups are known (tests/conftest.py)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    durations = cache.get(CACHE_KEY, {}) if cache is not None else {}
    totals: dict[str, float] = {}
    for item in items:
        totals[_unit(item)] = totals.get(_unit(item), 0.0) + _estimate(item, durations)
    position = {id(item): index for index, item in enumerate(items)}
    # Stable: within a unit, and among units of equal length, the collection order stays.
    items.sort(key=lambda item: (-totals[_unit(item)], position[id(item)]))


class DurationRecorder:
    """In the process that reports (xdist's controller, or pytest without -n): each test's
    setup + call + teardown, saved to the cache at the end, merged with the earlier runs'."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.durations: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        key = _key(report.nodeid)
        self.durations[key] = self.durations.get(key, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        cache = getattr(self.config, "cache", None)
        if cache is None or not self.durations:
            return
        known = cache.get(CACHE_KEY, {})
        known.update({k: round(v, 3) for k, v in self.durations.items()})
        cache.set(CACHE_KEY, known)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # not in an xdist worker: they do not report
        config.pluginmanager.register(DurationRecorder(config), "invoice-returns-durations")
