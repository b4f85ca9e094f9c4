"""Working days on the Chinese public-holiday calendar (the promised invoice issue date)."""

import datetime as dt
from zoneinfo import ZoneInfo

import chinese_calendar
from django.conf import settings

PROMISED_ISSUE_WORKING_DAYS = 3


def business_tz() -> ZoneInfo:
    """The time zone of the business calendar (Asia/Shanghai): months, dates on paper."""
    return ZoneInfo(settings.BUSINESS_TIME_ZONE)


def is_working_day(day: dt.date) -> bool:
    """A working day in mainland China, including make-up working days (调休) on weekends.

    ``chinese_calendar`` knows only the years the State Council has published; outside them it
    raises ``NotImplementedError`` and this falls back to Monday to Friday, which ignores
    public holidays and make-up days for those years.
    """
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5


def add_working_days(start: dt.date, days: int) -> dt.date:
    """The date ``days`` working days after ``start`` (``start`` itself is not counted)."""
    day = start
    remaining = days
    while remaining > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def promised_issue_date(applied_on: dt.date) -> dt.date:
    """Finance promises to issue an invoice three working days after the application."""
    return add_working_days(applied_on, PROMISED_ISSUE_WORKING_DAYS)
