"""Back-office actions on more rows than one request should take on run in the background
(``core.bulk``): each row once, in its own transaction with the action's progress, and staff
follow it under "Bulk actions"."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils.translation import override

from core import bulk
from core.bulk import (
    ERROR,
    BulkActionKind,
    bulk_action_advance,
    bulk_action_kind_register,
    bulk_action_start,
)
from core.models import BulkAction, OutboxMessage
from notifications.models import SmsMessage, SmsPurpose, SmsStatus
from notifications.services import sms_message_queue
from returns.bulk import RETURNS_REJECT
from returns.models import ReturnEvent, ReturnRequest, ReturnState
from returns.roles import FINANCE_STAFF
from tests.factories import staff_in_role
from tests.processes import celery_publishing_to, wait_for

SUBMITTED_LIST = f"/admin/returns/returnrequest/?state__exact={ReturnState.SUBMITTED}"


def seed_submitted(count: int) -> list[int]:
    """At least ``count`` submitted returns, written as ``make bench`` writes them; their ids."""
    call_command("seed_bench", customers=2, invoices=count * 2, stdout=StringIO())
    call_command("seed_bench_returns", returns=count * 3, stdout=StringIO())
    ids = list(
        ReturnRequest.objects.filter(state=ReturnState.SUBMITTED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    assert len(ids) >= count
    return ids


@pytest.fixture
def finance(db):
    return staff_in_role(FINANCE_STAFF, username="fin")


@pytest.fixture
def finance_client(client, finance):
    client.force_login(finance)
    return client


def reject_all_submitted(client, capture, *, reason: str = "Paper never arrived"):
    """Reject all of the submitted returns' list ("Select all"), as the action bar posts it;
    the tasks written on commit run then, as a worker would run them (no broker in tests)."""
    with capture(execute=True):
        return client.post(
            SUBMITTED_LIST,
            {
                "action": "reject",
                "select_across": "1",
                "index": "0",
                "_selected_action": ["0"],
                "reason": reason,
            },
            follow=True,
        )


def rejected_events(ids) -> int:
    return ReturnEvent.objects.filter(
        return_request_id__in=ids, to_state=ReturnState.REJECTED
    ).count()


def test_rejecting_more_returns_than_a_request_takes_on_runs_in_the_background_once_each(
    finance_client, finance, django_capture_on_commit_callbacks
):
    ids = seed_submitted(RETURNS_REJECT.in_request_limit + 1)
    response = reject_all_submitted(finance_client, django_capture_on_commit_callbacks)

    action = BulkAction.objects.get()
    count = len(ids)
    assert [str(m) for m in response.context["messages"]] == [
        f"Reject with the reason given: {count} returns are being done in the background, "
        "each in a transaction of its own. "
        f'<a href="/admin/core/bulkaction/{action.pk}/change/">Follow its progress</a>.'
    ]
    assert (action.kind, action.requested_by, action.total) == ("returns.reject", finance, count)
    assert action.object_ids == ids
    # The task ran when the request committed, as a worker would after.
    action.refresh_from_db()
    assert action.finished_at is not None
    assert (action.position, action.outcomes, action.errors) == (count, {"rejected": count}, [])
    assert set(ReturnRequest.objects.filter(pk__in=ids).values_list("state", flat=True)) == {
        ReturnState.REJECTED
    }
    assert rejected_events(ids) == count  # each return rejected once, under the clerk's name
    assert set(
        ReturnEvent.objects.filter(
            return_request_id__in=ids, to_state=ReturnState.REJECTED
        ).values_list("actor__username", flat=True)
    ) == {"fin"}


def test_a_page_of_returns_is_still_rejected_in_the_request(finance_client):
    ids = seed_submitted(3)
    response = finance_client.post(
        "/admin/returns/returnrequest/",
        {"action": "reject", "_selected_action": ids[:3], "reason": "Paper never arrived"},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == ["3 returns rejected."]
    assert not BulkAction.objects.exists()


def test_a_background_rejection_without_a_reason_is_refused_once_and_changes_nothing(
    finance_client, django_capture_on_commit_callbacks
):
    ids = seed_submitted(RETURNS_REJECT.in_request_limit + 1)
    response = reject_all_submitted(finance_client, django_capture_on_commit_callbacks, reason="  ")
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1  # not one per return
    assert messages[0].startswith("Please say why")
    assert not BulkAction.objects.exists()
    assert rejected_events(ids) == 0


def start(kind: BulkActionKind, object_ids: list[int], user, **params) -> BulkAction:
    """An action written down as ``bulk_action_start`` writes it, its task not yet run."""
    return BulkAction.objects.create(
        kind=kind.name,
        object_ids=object_ids,
        total=len(object_ids),
        params=params,
        requested_by=user,
        language="en",
    )


def test_a_slice_whose_time_is_up_does_one_row_and_hands_the_rest_to_the_next_task(
    finance, django_capture_on_commit_callbacks
):
    ids = seed_submitted(3)[:3]
    action = start(RETURNS_REJECT, ids, finance, reason="Paper never arrived")

    # With a broker (none listens here, and nothing is published: the test never commits).
    with (
        celery_publishing_to("redis://127.0.0.1:1/0"),
        django_capture_on_commit_callbacks(execute=False),
    ):
        assert bulk_action_advance(bulk_action_id=action.pk, seconds=0) == 1
    action.refresh_from_db()
    assert (action.position, action.outcomes, action.finished_at) == (1, {"rejected": 1}, None)
    # The next slice's task was written with the row it follows (the task outbox).
    next_slice = OutboxMessage.objects.filter(task="core.tasks.bulk_action_advance_task")
    assert list(next_slice.values_list("args", flat=True)) == [[action.pk]]
    assert rejected_events(ids) == 1

    assert bulk_action_advance(bulk_action_id=action.pk) == 2  # the rest, in time
    action.refresh_from_db()
    assert (action.position, action.outcomes) == (3, {"rejected": 3})
    assert action.finished_at is not None
    assert bulk_action_advance(bulk_action_id=action.pk) == 0  # delivered again: nothing
    assert rejected_events(ids) == 3


def test_rows_refused_are_counted_with_their_reasons_and_the_others_done(finance, monkeypatch):
    monkeypatch.setattr(bulk, "BULK_ACTION_ERRORS_KEPT", 2)
    ids = seed_submitted(5)[:5]
    refused = ids[1:4]
    ReturnRequest.objects.filter(pk__in=refused).update(state=ReturnState.CANCELLED)
    action = start(RETURNS_REJECT, ids, finance, reason="Paper never arrived")

    bulk_action_advance(bulk_action_id=action.pk)

    action.refresh_from_db()
    assert action.outcomes == {"rejected": 2, ERROR: 3}
    message = "Only a return that is not yet processing can be rejected."
    assert action.errors == [
        {"id": refused[0], "error": message},
        {"id": refused[1], "error": message},
    ]
    assert rejected_events(ids) == 2
    assert set(ReturnRequest.objects.filter(pk__in=refused).values_list("state", flat=True)) == {
        ReturnState.CANCELLED
    }


def test_a_row_that_fails_unexpectedly_is_logged_and_the_rest_are_done(finance, caplog):
    def run(object_id, actor, params):
        if object_id == 2:
            raise ValueError("a bug")
        if object_id == 3:  # a constraint broken in the database: its savepoint rolls back
            BulkAction.objects.create(total=-1, requested_by=finance, language="en")
        return "done"

    kind = BulkActionKind(
        name="tests.flaky", description="Flaky", outcomes={"done": "done"}, run=run
    )
    bulk_action_kind_register(kind)
    action = start(kind, [1, 2, 3, 4], finance)

    assert bulk_action_advance(bulk_action_id=action.pk) == 4
    action.refresh_from_db()
    assert action.outcomes == {"done": 2, ERROR: 2}
    unexpected = "An unexpected error stopped this row; it was logged."
    assert action.errors == [{"id": 2, "error": unexpected}, {"id": 3, "error": unexpected}]
    assert "tests.flaky: row 2 failed unexpectedly" in caplog.text
    assert "ValueError: a bug" in caplog.text
    assert "IntegrityError" in caplog.text
    assert BulkAction.objects.count() == 1  # row 3's insert was rolled back, nothing else


def test_the_refusals_are_written_in_the_language_of_the_clerk_who_asked(finance):
    ids = seed_submitted(1)[:1]
    ReturnRequest.objects.filter(pk__in=ids).update(state=ReturnState.CANCELLED)
    action = start(RETURNS_REJECT, ids, finance, reason="纸质发票未收到")
    BulkAction.objects.filter(pk=action.pk).update(language="zh-hans")

    bulk_action_advance(bulk_action_id=action.pk)

    action.refresh_from_db()
    with override("zh-hans"):
        from django.utils.translation import gettext

        expected = gettext("Only a return that is not yet processing can be rejected.")
    assert expected != "Only a return that is not yet processing can be rejected."
    assert action.errors == [{"id": ids[0], "error": expected}]


@pytest.mark.django_db(transaction=True)
def test_two_slices_running_at_once_take_turns_and_do_no_row_twice():
    """A message delivered twice (a worker presumed dead, the relay): both slices run the same
    action at the same time on their own connections; the action's lock has them take turns."""
    finance = staff_in_role(FINANCE_STAFF, username="fin-twice")
    ids = seed_submitted(40)
    action = start(RETURNS_REJECT, ids, finance, reason="Paper never arrived")
    done: list[int] = []
    failures: list[BaseException] = []
    go = threading.Barrier(2)

    def slice_() -> None:
        try:
            go.wait()
            done.append(bulk_action_advance(bulk_action_id=action.pk))
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=slice_) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert sum(done) == len(ids)
    assert all(count > 0 for count in done), done  # both took part (they took turns)
    action.refresh_from_db()
    assert (action.position, action.outcomes) == (len(ids), {"rejected": len(ids)})
    assert rejected_events(ids) == len(ids)


# --- following it -----------------------------------------------------------------------------


def test_staff_follow_their_own_background_actions_and_no_one_elses(
    finance_client, finance, django_capture_on_commit_callbacks
):
    ids = seed_submitted(RETURNS_REJECT.in_request_limit + 1)
    reject_all_submitted(finance_client, django_capture_on_commit_callbacks)
    action = BulkAction.objects.get()

    page = finance_client.get("/admin/core/bulkaction/").content.decode()
    count = len(ids)
    assert "Reject with the reason given" in page
    assert f"{count} of {count}, finished" in page
    assert f"rejected: {count}" in page
    detail = finance_client.get(f"/admin/core/bulkaction/{action.pk}/change/").content.decode()
    assert "Paper never arrived" in detail
    assert f"Bulk action #{action.pk}" in detail
    # Who asked, by name: no link to a user account page finance staff may not open.
    assert finance.username in detail
    assert "/admin/auth/user/" not in detail
    assert finance_client.get(f"/admin/auth/user/{finance.pk}/change/").status_code == 403

    other = Client()
    other.force_login(staff_in_role(FINANCE_STAFF, username="fin-2"))
    assert other.get("/admin/core/bulkaction/").context["cl"].result_count == 0
    assert other.get(f"/admin/core/bulkaction/{action.pk}/change/").status_code == 302  # gone
    # Nobody changes or deletes one: it is the record of what was done.
    assert finance_client.post(f"/admin/core/bulkaction/{action.pk}/delete/").status_code == 403


def test_a_refusal_past_those_kept_is_counted_on_the_page(finance_client, finance, monkeypatch):
    monkeypatch.setattr(bulk, "BULK_ACTION_ERRORS_KEPT", 1)
    ids = seed_submitted(3)[:3]
    ReturnRequest.objects.filter(pk__in=ids).update(state=ReturnState.CANCELLED)
    action = start(RETURNS_REJECT, ids, finance, reason="Paper never arrived")
    bulk_action_advance(bulk_action_id=action.pk)

    detail = finance_client.get(f"/admin/core/bulkaction/{action.pk}/change/").content.decode()
    assert f"#{ids[0]}: Only a return that is not yet processing can be rejected." in detail
    assert "and 2 more, not kept" in detail
    assert "refused: 3" in detail


def test_the_bulk_actions_page_in_chinese(finance, finance_client):
    action = start(RETURNS_REJECT, seed_submitted(2)[:2], finance, reason="纸质发票未收到")
    bulk_action_advance(bulk_action_id=action.pk)
    page = finance_client.get(
        "/admin/core/bulkaction/", headers={"accept-language": "zh-hans"}
    ).content.decode()
    assert "批量操作" in page
    assert "已驳回：2" in page


# --- SMS --------------------------------------------------------------------------------------


def test_resending_more_failed_sms_than_a_request_takes_on_runs_in_the_background(
    client, finance, django_capture_on_commit_callbacks
):
    count = 25
    failed = []
    for n in range(count):
        sms = sms_message_queue(
            to=f"+86138001380{n:02d}",
            body="Your return was rejected.",
            purpose=SmsPurpose.RETURN_REJECTED,
            idempotency_key=f"return:{n}:return_rejected",
        )
        failed.append(sms.pk)
    SmsMessage.objects.filter(pk__in=failed).update(status=SmsStatus.FAILED)
    client.force_login(finance)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/notifications/smsmessage/",
            {"action": "resend", "_selected_action": failed},
            follow=True,
        )

    action = BulkAction.objects.get()
    assert [str(m) for m in response.context["messages"]] == [
        f"Resend: {count} SMS messages are being done in the background, each in a "
        "transaction of its own. "
        f'<a href="/admin/core/bulkaction/{action.pk}/change/">Follow its progress</a>.'
    ]
    assert action.outcomes == {"requeued": count}
    assert not SmsMessage.objects.filter(pk__in=failed, status=SmsStatus.FAILED).exists()


# --- with a real worker -----------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_redis_works_through_the_action_slice_by_slice(
    private_redis, start_worker
):
    """The production path: the action's task goes through the outbox to Redis, a worker runs
    it in short slices (each writing the next one's task), and every return is rejected once."""
    finance = staff_in_role(FINANCE_STAFF, username="fin-worker")
    ids = seed_submitted(120)
    with celery_publishing_to(private_redis.url):
        worker = start_worker(
            broker_url=private_redis.url,
            name="bulk",
            env={"BULK_ACTION_SLICE_SECONDS": "0.2"},
        )
        action = bulk_action_start(
            kind=RETURNS_REJECT,
            object_ids=ids,
            user=finance,
            params={"reason": "Paper never arrived"},
            language="en",
        )

        def finished() -> bool:
            action.refresh_from_db()
            return action.finished_at is not None

        wait_for(finished, timeout=120, what="the bulk action", processes=(worker,))
        wait_for(
            lambda: not OutboxMessage.objects.filter(task__startswith="core.").exists(),
            timeout=10,
            what="the slices' outbox rows to go",
            processes=(worker,),
        )
    assert (action.position, action.outcomes, action.errors) == (
        len(ids),
        {"rejected": len(ids)},
        [],
    )
    assert rejected_events(ids) == len(ids)
    log = worker.log_path.read_text(errors="replace")
    slices = log.count("core.tasks.bulk_action_advance_task[") // 2  # received, succeeded
    assert slices > 1, log[-2000:]
