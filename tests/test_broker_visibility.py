"""The Redis broker's visibility timeout, matched to the tasks' countdowns and time limits.

Redis hands a message that a worker took but never acknowledged to another worker once the
visibility timeout has passed since it was taken. Tasks acknowledge late (once run), and a
worker takes a message with a countdown (a retry's backoff, the wait before polling the tax
system) at once and holds it until it is due. So the timeout must outlast the longest
countdown plus the hard time limit, or a waiting retry would run twice; and anything much
longer only delays the redelivery of a dead worker's messages (issue 15: one hour).
"""

import math

from django.conf import settings

from config.celery import app as celery_app
from notifications.tasks import DATABASE_RETRY_BACKOFF_MAX, SEND_RETRY_BACKOFF_MAX
from returns.tasks import poll_countdown

OUR_PACKAGES = ("config.", "core.", "invoices.", "returns.", "notifications.")
# A minute for a busy pool between a task coming due and starting; the test allows two.
MARGIN_ALLOWED = 120

# Tasks that choose their own countdown instead of (or besides) Celery's autoretry backoff.
OWN_COUNTDOWNS = {
    # Twilio's transient errors and database errors, each with its own exponential backoff.
    "notifications.tasks.sms_send_task": max(SEND_RETRY_BACKOFF_MAX, DATABASE_RETRY_BACKOFF_MAX),
    # The wait the tax-system backend asks for before a result is worth asking (a provider
    # may ask anything): clamped.
    "returns.tasks.return_tax_poll_task": poll_countdown(math.inf),
    "returns.tasks.return_tax_submit_task": poll_countdown(math.inf),  # it enqueues the poll
}


def our_tasks():
    celery_app.loader.import_default_modules()
    tasks = [t for name, t in celery_app.tasks.items() if name.startswith(OUR_PACKAGES)]
    assert len(tasks) >= 8, sorted(t.name for t in tasks)  # the registry was really loaded
    return tasks


def longest_countdown(task) -> float:
    """The longest a message of this task can wait, taken by a worker, before it runs."""
    waits = [OWN_COUNTDOWNS.get(task.name, 0)]
    if getattr(task, "autoretry_for", ()):  # set on the task only when given
        backoff = getattr(task, "retry_backoff", False)
        waits.append(
            getattr(task, "retry_backoff_max", 600) if backoff else task.default_retry_delay
        )
    return max(waits)


def hard_time_limit(task) -> float:
    return task.time_limit or celery_app.conf.task_time_limit


def visibility_timeout() -> float:
    return celery_app.conf.broker_transport_options["visibility_timeout"]


def test_every_task_waits_at_most_the_longest_countdown_the_broker_is_sized_for():
    waits = {task.name: longest_countdown(task) for task in our_tasks()}
    print("\nlongest countdown per task (s):", waits)
    too_long = {n: w for n, w in waits.items() if w > settings.TASK_LONGEST_COUNTDOWN_SECONDS}
    assert not too_long, f"above TASK_LONGEST_COUNTDOWN_SECONDS: {too_long}"


def test_the_visibility_timeout_outlasts_the_longest_countdown_plus_the_hard_time_limit():
    """No message is handed to a second worker while the first one still holds it for a
    retry, or is still running it."""
    for task in our_tasks():
        held = longest_countdown(task) + hard_time_limit(task)
        assert visibility_timeout() > held, (task.name, held, visibility_timeout())


def test_the_visibility_timeout_is_no_longer_than_needed_so_a_dead_workers_messages_return():
    tasks = our_tasks()
    needed = max(longest_countdown(t) for t in tasks) + max(hard_time_limit(t) for t in tasks)
    print(f"\nvisibility timeout {visibility_timeout()} s, needed {needed} s")
    assert visibility_timeout() <= needed + MARGIN_ALLOWED
    assert visibility_timeout() < 3600  # what it was: a dead worker's messages waited an hour


def test_a_tax_system_asking_for_a_longer_wait_is_polled_within_the_longest_countdown():
    assert poll_countdown(5.0) == 5.0
    assert poll_countdown(3600.0) == settings.TASK_LONGEST_COUNTDOWN_SECONDS
