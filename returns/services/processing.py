"""From *processing* to an outcome (R6-R8): the request to the tax system, its answer
recorded or corrected, failures and staff retries.
"""

import datetime as dt
import logging
from functools import cache

from django.db import transaction
from django.utils.translation import gettext as _

from core import sql
from core.audit.actor import Actor
from core.enqueue import enqueue_on_commit
from core.exceptions import DomainError
from invoices.models import ReturnOutcome, TaxOperation, TaxRequest
from invoices.tax import money_as_written
from invoices.taxsystem.interface import BUYER_DECLINED, ResultStatus, TaxResult
from invoices.taxsystem.services import (
    local_minute,
    tax_outcome_correct,
    tax_outcome_record,
    tax_poll_after_seconds,
    tax_request_await_buyer,
    tax_request_buyer_declined,
    tax_request_open,
    tax_request_query,
    tax_request_refuse,
    tax_request_submit,
    tax_simulate_buyer_decision,
)
from returns.exceptions import ReturnProcessingError, ReturnStateConflict
from returns.models import ReturnRequest, ReturnState
from returns.rules import (
    return_awaits_buyer,
    return_can_be_retried,
    return_is_ready_to_process,
    return_needs_red_letter_form,
    return_outcome_can_be_corrected,
    return_outcome_can_be_recorded,
)
from returns.selectors import red_letter_form_current
from returns.services._common import (
    _lock_return,
    _notify,
    _reject,
    _transition,
    return_event_record,
)

logger = logging.getLogger(__name__)

# The return has asked the tax system and waits for its answer (or the buyer's).
WAITING_ON_TAX_SYSTEM = (ReturnState.AWAITING_TAX, ReturnState.AWAITING_BUYER)


def return_request_process(
    *,
    return_request_id: int,
    actor: Actor = Actor.system("returns.services.return_request_process"),
    submitted_by_caller: bool = False,
) -> ReturnRequest:
    """Turn the void-or-reverse decision (R6) into a request to the tax system.

    The return then waits in *awaiting the tax system*; it completes only when the tax
    system's outcome is recorded (``return_request_record_outcome``). Safe to run twice or
    twice at once: the return row is locked and a pending request is reused, never doubled.
    A permanent failure moves the return to *failed* with the error, for staff to retry.

    The request is handed to the tax system after commit by a task of its own
    (``return_tax_submit_task``), unless ``submitted_by_caller``: the processing task then
    calls ``return_tax_submit`` itself right after this returns, which saves a task (its
    outbox row, its broker round trip, reading the return again) when the backend answers at
    once. That task's own message stands guarantee meanwhile: it is finished (and its outbox
    row deleted) only after the submission, and run again it submits a return it finds
    awaiting the tax system.
    """
    try:
        return _process(return_request_id, actor=actor, enqueue_submit=not submitted_by_caller)
    except DomainError as exc:
        logger.warning("return %s failed: %s", return_request_id, exc)
        return return_request_mark_failed(
            return_request_id=return_request_id, error=str(exc), actor=actor
        )


@transaction.atomic
def _process(return_request_id: int, *, actor: Actor, enqueue_submit: bool) -> ReturnRequest:
    rr = _lock_return(return_request_id)
    if rr.state != ReturnState.PROCESSING:
        logger.info("return %s is %s: nothing to process", rr.pk, rr.state)
        return rr
    needs_form = return_needs_red_letter_form(rr)
    form = red_letter_form_current(return_request_id=rr.pk) if needs_form else None
    if not return_is_ready_to_process(rr, form):  # R4, asked again under the lock
        if needs_form:
            raise ReturnProcessingError(_("The red-letter information form is not approved."))
        raise ReturnProcessingError(_("The paper invoice has not been received complete."))
    form_number = form.form_number if form is not None else ""
    tax_request = tax_request_open(
        invoice_id=rr.invoice_id,
        certified=rr.certified,
        reason_code=rr.reason_code,
        buyer_form_number=form_number or rr.buyer_form_number,
        buyer_booked=rr.buyer_booked,
    )
    rr.tax_request = tax_request
    rr.error = ""
    _transition(
        rr,
        to_state=ReturnState.AWAITING_TAX,
        actor=actor,
        key="tax.sent",
        params={"operation": tax_request.operation, "serial": tax_request.serial},
        fields=("tax_request", "error"),
    )
    if enqueue_submit:
        from returns.tasks import return_tax_submit_task

        enqueue_on_commit(return_tax_submit_task, rr.pk)
    logger.info(
        "return %s: %s requested from the tax system (request %s)",
        rr.pk,
        tax_request.operation,
        tax_request.serial,
    )
    return rr


def return_tax_submit(
    *, return_request_id: int, actor: Actor = Actor.system("returns.services.return_tax_submit")
) -> float | None:
    """Hand the return's request to the tax-system backend, outside any transaction.

    Returns how many seconds to wait before asking for the result, or None when nothing is
    left to ask (the outcome is recorded, the request refused, or finance records it by
    hand). ``TaxSystemTransientError`` is left to the task's retry policy.
    """
    rr = _return_with_request(return_request_id)
    if rr is None or rr.state not in WAITING_ON_TAX_SYSTEM or rr.tax_request_id is None:
        return None
    result = tax_request_submit(tax_request_id=rr.tax_request_id)
    return _apply_tax_result(rr, result, actor=actor)


def return_tax_poll(
    *, return_request_id: int, actor: Actor = Actor.system("returns.services.return_tax_poll")
) -> float | None:
    """Ask the tax system for the result of the return's request; like ``return_tax_submit``."""
    rr = _return_with_request(return_request_id)
    if rr is None or rr.state not in WAITING_ON_TAX_SYSTEM or rr.tax_request_id is None:
        return None
    result = tax_request_query(tax_request_id=rr.tax_request_id)
    return _apply_tax_result(rr, result, actor=actor)


@cache
def _return_with_request_sql() -> str:
    """``_return_with_request``'s statement, written out (``core.sql``): the ORM's join cost
    more CPU to build than to run, once for every return submitted or polled (issue 16, P3)."""
    returns, requests = ReturnRequest._meta.db_table, TaxRequest._meta.db_table
    return (
        f"SELECT {sql.columns(ReturnRequest, 'r')}, {sql.columns(TaxRequest, 't')} "  # noqa: S608
        f"FROM {returns} AS r LEFT JOIN {requests} AS t ON t.id = r.tax_request_id "
        "WHERE r.id = %s"
    )


def _return_with_request(return_request_id: int) -> ReturnRequest | None:
    """The return with its tax-system request (none yet: None in its place), unlocked."""
    with sql.prepared_cursor() as cursor:
        cursor.execute(_return_with_request_sql(), [return_request_id])
        row = cursor.fetchone()
    if row is None:
        return None
    split = sql.width(ReturnRequest)
    rr = sql.instance(ReturnRequest, row[:split])
    tax_request = sql.instance(TaxRequest, row[split:]) if rr.tax_request_id is not None else None
    ReturnRequest.tax_request.field.set_cached_value(rr, tax_request)
    return rr


def _apply_tax_result(rr: ReturnRequest, result: TaxResult, *, actor: Actor) -> float | None:
    if result.status == ResultStatus.DONE:
        return_request_record_outcome(return_request_id=rr.pk, result=result, actor=actor)
        return None
    if result.status == ResultStatus.REFUSED:
        return_request_tax_refused(return_request_id=rr.pk, error=result.error, actor=actor)
        return None
    if result.status in BUYER_DECLINED:
        return_request_buyer_declined(
            return_request_id=rr.pk, expired=result.status == ResultStatus.EXPIRED, actor=actor
        )
        return None
    if result.status == ResultStatus.AWAITING_BUYER:
        # The buyer has up to 72 hours: no tight polling. The sweeper asks again every
        # TAX_POLL_REQUEUE_AFTER_SECONDS (and the sandbox's "I have confirmed it" at once).
        return_request_await_buyer(
            return_request_id=rr.pk,
            form_number=result.form_number,
            confirm_by=result.confirm_by,
            actor=actor,
        )
        return None
    assert rr.tax_request is not None  # noqa: S101 (checked by the callers)
    return tax_poll_after_seconds(backend_name=rr.tax_request.backend)


@transaction.atomic
def return_request_record_outcome(
    *,
    return_request_id: int,
    result: TaxResult,
    actor: Actor = Actor.system("returns.services.return_request_record_outcome"),
) -> ReturnRequest:
    """Record the tax system's outcome: the invoice is voided or reversed, its total credited
    (R6, R7), the return completed and the success SMS queued (R8), in one transaction.

    Finance records it by hand (manual backend) or the backend's answer does (a system actor).
    Recording the same outcome twice is a no-op; two people recording at once queue on the
    invoice lock and the second sees the first's outcome.
    """
    rr = _lock_return(return_request_id)
    if rr.tax_request_id is None:
        raise ReturnStateConflict(_("This return has not been sent to the tax system."))
    if not return_outcome_can_be_recorded(rr):
        raise ReturnStateConflict(
            _("This return is %(state)s: there is no outcome to record.")
            % {"state": rr.get_state_display().lower()}
        )
    tax_request = tax_outcome_record(tax_request_id=rr.tax_request_id, result=result, actor=actor)
    if rr.state == ReturnState.COMPLETED:
        return rr
    if rr.state == ReturnState.AWAITING_BUYER:
        _transition(
            rr,
            to_state=ReturnState.AWAITING_TAX,
            actor=actor,
            key="tax.buyer_confirmed",
            params={"form": tax_request.red_letter_form_number},
        )
    # A void has no red-letter invoice: not asked for (a query that finds nothing).
    red = tax_request.red_letter_invoice if tax_request.operation != TaxOperation.VOID else None
    rr.outcome = ReturnOutcome.REVERSED if red is not None else ReturnOutcome.VOIDED
    rr.error = ""

    if red is not None:
        key = "tax.reversed"
        params = {"code": red.code, "number": red.number, "date": red.issued_on.isoformat()}
    else:
        key, params = "tax.voided", {"date": f"{tax_request.voided_on:%Y-%m-%d}"}
    _transition(
        rr,
        to_state=ReturnState.COMPLETED,
        actor=actor,
        key=key,
        params=params,
        fields=("outcome", "error"),
    )
    amount = money_as_written(rr.invoice.total)  # what R7 gave back, with its currency
    if red is not None:
        _notify(
            rr,
            template="return_completed_reversed",
            params={"number": rr.invoice.number, "red": red.number, "amount": amount},
        )
    else:
        _notify(
            rr,
            template="return_completed_voided",
            params={"number": rr.invoice.number, "amount": amount},
        )
    return rr


@transaction.atomic
def return_request_await_buyer(
    *,
    return_request_id: int,
    form_number: str,
    confirm_by: dt.datetime | None = None,
    entered_at: dt.datetime | None = None,
    actor: Actor = Actor.system("returns.services.return_request_await_buyer"),
) -> ReturnRequest:
    """The red-letter confirmation form is entered and awaits the buyer (a digital invoice the
    buyer booked or confirmed the use of): the return shows the form's number, what to do and
    the deadline, and one SMS says so. From the backend's answer, or recorded by finance
    (manual backend) with when the form was entered. Recording it twice is a no-op."""
    rr = _lock_return(return_request_id)
    if rr.state == ReturnState.AWAITING_BUYER:
        return rr
    if rr.state != ReturnState.AWAITING_TAX or rr.tax_request_id is None:
        raise ReturnStateConflict(
            _("This return is %(state)s: no confirmation form can be recorded.")
            % {"state": rr.get_state_display().lower()}
        )
    tax_request = tax_request_await_buyer(
        tax_request_id=rr.tax_request_id,
        form_number=form_number,
        confirm_by=confirm_by,
        entered_at=entered_at,
    )
    deadline = tax_request.confirm_by
    assert deadline is not None  # noqa: S101 (a database constraint)

    _transition(
        rr,
        to_state=ReturnState.AWAITING_BUYER,
        actor=actor,
        key="tax.awaiting_buyer",
        params={"form": tax_request.red_letter_form_number, "deadline": local_minute(deadline)},
    )
    _notify(
        rr,
        template="buyer_confirmation",
        params={
            "number": rr.invoice.number,
            "form": tax_request.red_letter_form_number,
            "deadline": local_minute(deadline),
        },
    )
    return rr


@transaction.atomic
def return_request_buyer_declined(
    *,
    return_request_id: int,
    expired: bool,
    actor: Actor = Actor.system("returns.services.return_request_buyer_declined"),
) -> ReturnRequest:
    """The buyer refused the red-letter confirmation form or let 72 hours pass: nothing was
    issued, the invoice stays valid, the return ends *rejected* with that reason (the
    customer's language) and the customer may start a new return."""
    rr = _lock_return(return_request_id)
    if rr.state == ReturnState.REJECTED:
        return rr
    if rr.state != ReturnState.AWAITING_BUYER or rr.tax_request_id is None:
        raise ReturnStateConflict(_("Only a return awaiting the buyer's confirmation can end so."))
    tax_request = tax_request_buyer_declined(tax_request_id=rr.tax_request_id, expired=expired)
    key = "tax.buyer_lapsed" if expired else "tax.buyer_refused"
    form = tax_request.red_letter_form_number
    template = "return_rejected_buyer_lapsed" if expired else "return_rejected_buyer_refused"
    _reject(rr, actor=actor, key=key, params={"form": form}, sms=(template, {"form": form}))
    return rr


def return_request_simulate_buyer(
    *, return_request_id: int, customer_id: int, confirmed: bool
) -> ReturnRequest:
    """Development only: the customer plays its own buyer on the sandbox's e-tax platform and
    confirms (or refuses) the form; the result is asked for at once."""
    rr = (
        ReturnRequest.objects.select_related("tax_request")
        .filter(pk=return_request_id, invoice__customer_id=customer_id)
        .first()
    )
    if rr is None:
        raise ReturnStateConflict(_("No such return."))
    if not return_awaits_buyer(rr) or rr.tax_request_id is None:
        raise ReturnStateConflict(_("This return is not awaiting the buyer's confirmation."))
    tax_simulate_buyer_decision(tax_request_id=rr.tax_request_id, confirmed=confirmed)
    return_tax_poll(return_request_id=rr.pk)
    rr.refresh_from_db()
    return rr


@transaction.atomic
def return_request_correct_outcome(
    *,
    return_request_id: int,
    actor: Actor,
    reason: str,
    code: str = "",
    number: str = "",
    issued_on: dt.date | None = None,
    voided_on: dt.date | None = None,
) -> ReturnRequest:
    """An admin reviewer corrects a mistyped outcome (``tax_outcome_correct``); the return's
    timeline says so, in the customer's language, with the reviewer's reason (R11)."""
    rr = _lock_return(return_request_id)
    if not return_outcome_can_be_corrected(rr):
        raise ReturnStateConflict(_("Only a completed return's outcome can be corrected."))
    assert rr.tax_request_id is not None  # noqa: S101 (the rule says so)
    correction = tax_outcome_correct(
        tax_request_id=rr.tax_request_id,
        actor=actor,
        reason=reason,
        code=code,
        number=number,
        issued_on=issued_on,
        voided_on=voided_on,
    )

    return_event_record(
        return_request=rr,
        actor=actor,
        from_state=rr.state,
        to_state=rr.state,
        key="note.outcome_corrected",
        # The reviewer's reason is typed text: a parameter, shown as typed in any language.
        params={"after": ", ".join(correction.after.values()), "reason": correction.reason},
        action="return.outcome_corrected",
    )
    return rr


@transaction.atomic
def return_request_tax_refused(
    *,
    return_request_id: int,
    error: str,
    actor: Actor = Actor.system("returns.services.return_request_tax_refused"),
) -> ReturnRequest:
    """The tax system refused the request for good: the return fails, visibly, for staff."""
    rr = _lock_return(return_request_id)
    if rr.tax_request_id is None or rr.state != ReturnState.AWAITING_TAX:
        return rr
    tax_request_refuse(tax_request_id=rr.tax_request_id, error=error)
    return _fail(
        rr,
        error=f"The tax system refused the request: {error}",  # for staff, who read both
        actor=actor,
        key="tax.refused",
        params={"error": error},
    )


@transaction.atomic
def return_request_mark_failed(
    *,
    return_request_id: int,
    error: str,
    actor: Actor = Actor.system("returns.services.return_request_mark_failed"),
) -> ReturnRequest:
    rr = _lock_return(return_request_id)
    if rr.state not in (ReturnState.PROCESSING, ReturnState.AWAITING_TAX):
        return rr
    return _fail(rr, error=error, actor=actor)


def _fail(
    rr: ReturnRequest,
    *,
    error: str,
    actor: Actor,
    key: str = "",
    params: dict[str, str] | None = None,
) -> ReturnRequest:
    """*failed*, with the error for staff; the timeline says it by key when the system words
    it, else shows the error as it came."""
    rr.error = error
    _transition(
        rr,
        to_state=ReturnState.FAILED,
        actor=actor,
        note="" if key else error,
        key=key,
        params=params,
        fields=("error",),
    )
    return rr


@transaction.atomic
def return_request_retry(*, return_request_id: int, actor: Actor) -> ReturnRequest:
    """Staff retry a failed return once the cause is fixed. A request the tax system still
    holds is submitted again under its own serial; a refused one is replaced by a new one."""
    rr = _lock_return(return_request_id)
    if rr.state == ReturnState.PROCESSING:
        return rr
    if not return_can_be_retried(rr):
        raise ReturnStateConflict(_("Only a failed return can be retried."))
    _transition(
        rr,
        to_state=ReturnState.PROCESSING,
        actor=actor,
        key="return.retried_by_staff",
        action="return.retried",
    )
    from returns.tasks import return_process_task

    enqueue_on_commit(return_process_task, rr.pk)
    return rr
