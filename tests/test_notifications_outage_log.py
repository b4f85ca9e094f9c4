"""One warning per outage, not one per retry (notifications/outage.py)."""

import logging

from django.db import OperationalError

from core.outage import OutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _levels(caplog) -> list[str]:
    return [r.levelname for r in caplog.records if r.name == "test.outage"]


def test_an_outage_of_many_errors_is_one_warning_then_one_line_when_it_recovers(caplog):
    caplog.set_level(logging.DEBUG, logger="test.outage")
    clock = Clock()
    log = OutageLog(logging.getLogger("test.outage"), "The database", clock=clock)

    for _ in range(500):
        log.failed(OperationalError("terminating connection due to administrator command"))
        clock.now += 0.04  # 500 errors in 20 s
    log.recovered()
    log.recovered()  # nothing more to say

    levels = _levels(caplog)
    assert levels.count("WARNING") == 1
    assert levels.count("INFO") == 1
    assert levels.count("DEBUG") == 499
    assert "500 errors" in caplog.records[-1].getMessage()


def test_a_long_outage_is_reminded_every_interval_and_a_new_one_warns_again(caplog):
    caplog.set_level(logging.WARNING, logger="test.outage")
    clock = Clock()
    log = OutageLog(logging.getLogger("test.outage"), "The database", remind_every=300, clock=clock)

    for _ in range(61):
        log.failed(OperationalError("down"))
        clock.now += 10  # 10 minutes
    assert _levels(caplog) == ["WARNING"] * 3  # at 0 s, 300 s and 600 s
    assert "still unreachable" in caplog.records[1].getMessage()

    log.recovered()
    log.failed(OperationalError("down again"))
    assert _levels(caplog) == ["WARNING"] * 4
