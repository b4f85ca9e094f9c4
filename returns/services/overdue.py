"""Chasing paper that does not come: the customer is reminded by SMS 14 and 30 days after
clicking Refund (once each), and the return is closed (rejected, with a reason the customer
reads) after 60 days, so that the invoice can be returned again when the paper is found."""

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from core.audit.actor import Actor
from notifications.models import EmailNotification, SmsMessage, SmsPurpose
from returns.backoffice_selectors import returns_paper_overdue
from returns.models import ReturnRequest
from returns.rules import return_paper_is_awaited
from returns.services._common import _lock_return, _notify, _reject

logger = logging.getLogger(__name__)

PAPER_REMINDER_DAYS = (14, 30)
PAPER_CLOSE_DAYS = 60


@dataclass
class PaperChaseReport:
    reminded: dict[int, list[int]] = field(default_factory=dict)  # days → return ids
    closed: list[int] = field(default_factory=list)


def _days_waiting(rr: ReturnRequest, now: dt.datetime) -> int:
    return (now - rr.created_at).days


@transaction.atomic
def return_request_chase_paper(
    *,
    return_request_id: int,
    now: dt.datetime,
    actor: Actor = Actor.system("returns.services.return_request_chase_paper"),
) -> str:
    """Remind or close one return whose paper has not come: "closed", "reminded:<days>" or ""
    (nothing due, already done, or the paper came meanwhile). Idempotent: each reminder has
    its own SMS idempotency key (``return:<id>:paper_reminder:<days>``), a closed return is
    no longer awaited."""
    rr = _lock_return(return_request_id)
    if not return_paper_is_awaited(rr):
        return ""
    days = _days_waiting(rr, now)
    if days >= PAPER_CLOSE_DAYS:
        _reject(
            rr,
            actor=actor,
            key="return.closed_no_paper",
            params={"days": PAPER_CLOSE_DAYS},
            sms=("return_rejected_paper_overdue", {"days": PAPER_CLOSE_DAYS}),
        )
        return "closed"
    due = [reminder for reminder in PAPER_REMINDER_DAYS if days >= reminder]
    if not due:
        return ""
    reminder = due[-1]  # the latest one due: a return first seen at day 35 gets the 30-day one
    key = f"return:{rr.pk}:{SmsPurpose.PAPER_REMINDER}:{reminder}"
    told = (
        SmsMessage.objects.filter(idempotency_key=key).exists()
        or EmailNotification.objects.filter(idempotency_key=key).exists()
    )
    if told:
        return ""
    channels = _notify(
        rr,
        template="paper_reminder",
        params={"number": rr.invoice.number, "days": reminder, "close": PAPER_CLOSE_DAYS},
        event=key,
    )
    return f"reminded:{reminder}" if channels else ""


def returns_chase_paper(
    *,
    now: dt.datetime | None = None,
    actor: Actor = Actor.system("returns.services.returns_chase_paper"),
) -> PaperChaseReport:
    """The daily run (beat): every paper return waiting for its paper at least 14 days, each
    in its own transaction (one customer's trouble does not hold back the others)."""
    now = now or timezone.now()
    report = PaperChaseReport()
    ids = list(
        returns_paper_overdue(now=now, days=min(PAPER_REMINDER_DAYS)).values_list("pk", flat=True)
    )
    for return_request_id in ids:
        done = return_request_chase_paper(return_request_id=return_request_id, now=now, actor=actor)
        if done == "closed":
            report.closed.append(return_request_id)
        elif done.startswith("reminded:"):
            days = int(done.split(":", 1)[1])
            report.reminded.setdefault(days, []).append(return_request_id)
    if report.closed or report.reminded:
        logger.info(
            "paper chase: %d reminders, %d returns closed after %d days",
            sum(len(v) for v in report.reminded.values()),
            len(report.closed),
            PAPER_CLOSE_DAYS,
        )
    return report
