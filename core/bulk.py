"""Back-office actions on many rows at once, done in the web request or in the background.

Rejecting a few returns, or resending a page of failed SMS, is done while the clerk waits, as
Django's admin actions are. Acting on all of a filtered list (up to the 10,000 rows a list
counts) is not: at a few milliseconds a return, or a look-up at Twilio an SMS, it outlasts the
web server's timeout, which would cut it off halfway with nothing to say what was done. So an
action on more rows than its kind's ``in_request_limit`` is written down as a ``BulkAction``
(the rows' ids, what staff entered, who asked) and worked through by a task in slices of
``BULK_ACTION_SLICE_SECONDS``, each row in a transaction of its own that also moves the
action's progress on: a row's change and its count commit together, so a worker that dies
mid-way leaves the action exactly where its last row left it, and the next slice (the task
outbox publishes it again) goes on from there.

An app registers what one row of each of its actions does (``bulk_action_kind_register``, from
its ``AppConfig.ready``); the admin action calls ``bulk_action_rows`` (``core.admin``).
"""

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import User
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext

from core.audit.actor import Actor
from core.enqueue import enqueue_on_commit
from core.exceptions import DomainError
from core.models import BulkAction

logger = logging.getLogger(__name__)

# The outcome of a row its action refused (a ``DomainError``), or that failed unexpectedly.
ERROR = "error"
# How many refusals an action keeps, with their rows' ids and messages; the rest are counted.
BULK_ACTION_ERRORS_KEPT = 100


@dataclass(frozen=True)
class BulkActionKind:
    """One admin action that may run in the background.

    ``run(object_id, actor, params)`` does one row (its own service, which locks and re-checks
    the row) and returns the row's outcome, one of ``outcomes``' keys; it raises a
    ``DomainError`` to refuse the row, whose message staff read."""

    name: str
    description: Promise
    outcomes: Mapping[str, Promise]
    run: Callable[[int, Actor, Mapping[str, Any]], str]
    # Up to this many rows the action is done in the request, as Django's admin does it.
    in_request_limit: int = 100
    # What the rows are ("returns"), for the message that the action goes on in the background.
    items: Promise | None = None
    # Checks what staff entered before an action is started in the background (raising a
    # ``DomainError``), so that a mistake is said once rather than on every row.
    check: Callable[[Mapping[str, Any]], None] | None = None


_KINDS: dict[str, BulkActionKind] = {}


def bulk_action_kind_register(kind: BulkActionKind) -> None:
    _KINDS[kind.name] = kind


def bulk_action_kind(name: str) -> BulkActionKind:
    return _KINDS[name]


@dataclass(frozen=True)
class RowResult:
    object_id: int
    outcome: str
    error: str = ""


def _run_row(
    kind: BulkActionKind, object_id: int, actor: Actor, params: Mapping[str, Any]
) -> RowResult:
    """One row in a transaction (a savepoint inside the background action's own) that is
    rolled back if the row is refused. A row that fails unexpectedly is logged with its
    traceback and counted as an error, so that one bad row does not hold up the others (a
    constraint it broke too: only its savepoint is rolled back). The database going away, or
    the task's time running out, stops the slice: its task is tried again, or the outbox
    publishes it again, and it goes on from the last row committed."""
    try:
        with transaction.atomic():
            return RowResult(object_id, kind.run(object_id, actor, params))
    except DomainError as exc:
        return RowResult(object_id, ERROR, str(exc))
    except (OperationalError, InterfaceError, SoftTimeLimitExceeded):
        raise
    except Exception:
        logger.exception("%s: row %s failed unexpectedly", kind.name, object_id)
        return RowResult(
            object_id, ERROR, gettext("An unexpected error stopped this row; it was logged.")
        )


def bulk_action_run_in_request(
    *, kind: BulkActionKind, object_ids: Sequence[int], actor: Actor, params: Mapping[str, Any]
) -> list[RowResult]:
    """Do each row now, each in its own transaction; the admin says what came of them."""
    return [_run_row(kind, object_id, actor, params) for object_id in object_ids]


@transaction.atomic
def bulk_action_start(
    *,
    kind: BulkActionKind,
    object_ids: Sequence[int],
    user: User,
    params: Mapping[str, Any],
    language: str,
) -> BulkAction:
    """Write the action down and have it done in the background, starting once this commits."""
    from core.tasks import bulk_action_advance_task

    action = BulkAction.objects.create(
        kind=kind.name,
        object_ids=list(object_ids),
        total=len(object_ids),
        params=dict(params),
        requested_by=user,
        language=language,
    )
    enqueue_on_commit(bulk_action_advance_task, action.pk)
    return action


@dataclass
class _Slice:
    """What a slice reads once: the rows, who asked, and how long it may go on."""

    kind: BulkActionKind
    object_ids: list[int]
    actor: Actor
    params: dict[str, Any]
    language: str
    deadline: float
    done: int = field(default=0)  # rows done by this slice
    over: bool = field(default=False)


def bulk_action_advance(*, bulk_action_id: int, seconds: float | None = None) -> int:
    """Work through the action's rows for about ``seconds`` (``BULK_ACTION_SLICE_SECONDS``),
    each row with the action's progress in one transaction, then hand the rest to the next
    slice (its task written under the action's lock). Returns how many rows it did.

    The action's row is locked for each row and its position read under that lock, so two
    slices running at once (a message delivered twice) take turns and never do a row twice.
    A finished action is left alone."""
    action = BulkAction.objects.select_related("requested_by").get(pk=bulk_action_id)
    if action.finished_at is not None:
        return 0
    budget = settings.BULK_ACTION_SLICE_SECONDS if seconds is None else seconds
    work = _Slice(
        kind=bulk_action_kind(action.kind),
        object_ids=action.object_ids,
        actor=Actor.staff(action.requested_by),
        params=action.params,
        language=action.language,
        deadline=time.monotonic() + budget,
    )
    with translation.override(work.language):
        while not work.over:
            _advance_one(bulk_action_id, work)
    return work.done


def _advance_one(bulk_action_id: int, work: _Slice) -> None:
    """Do the next row, if there is one and time left; say when this slice is over."""
    from core.tasks import bulk_action_advance_task

    with transaction.atomic():
        action = (
            BulkAction.objects.select_for_update()
            .only("position", "outcomes", "errors", "finished_at")
            .get(pk=bulk_action_id)
        )
        if action.finished_at is not None:
            work.over = True
            return
        if action.position >= len(work.object_ids):
            action.finished_at = timezone.now()
            action.save(update_fields=["finished_at"])
            work.over = True
            return
        if work.done and time.monotonic() >= work.deadline:  # every slice does a row at least
            enqueue_on_commit(bulk_action_advance_task, bulk_action_id)
            work.over = True
            return
        result = _run_row(work.kind, work.object_ids[action.position], work.actor, work.params)
        action.position += 1
        action.outcomes[result.outcome] = action.outcomes.get(result.outcome, 0) + 1
        changed = ["position", "outcomes"]
        if result.error and len(action.errors) < BULK_ACTION_ERRORS_KEPT:
            action.errors.append({"id": result.object_id, "error": result.error})
            changed.append("errors")
        if action.position == len(work.object_ids):
            action.finished_at = timezone.now()
            changed.append("finished_at")
            work.over = True
        action.save(update_fields=changed)
        work.done += 1
