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


# A request to the tax system is finance's to act on within this many working days.
TAX_TASK_WORKING_DAYS = 3


def tax_task_due_date(requested_on: dt.date) -> dt.date:
    """The last day a request made on ``requested_on`` (Asia/Shanghai) is on time."""
    return add_working_days(requested_on, TAX_TASK_WORKING_DAYS)


def overdue_cutoff(now: dt.datetime) -> dt.datetime:
    """Requests made before this instant are overdue at ``now``: it is the start (Asia/Shanghai)
    of the day after the latest day whose due date has passed. ``tax_task_due_date`` grows
    with the day, so the day is found by walking back from today."""
    today = now.astimezone(business_tz()).date()
    day = today - dt.timedelta(days=1)
    while tax_task_due_date(day) >= today:
        day -= dt.timedelta(days=1)
    following = day + dt.timedelta(days=1)
    return dt.datetime.combine(following, dt.time.min, tzinfo=business_tz())
