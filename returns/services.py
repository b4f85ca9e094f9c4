"""Every write of the return workflow (R1-R9, R11).

Each transition locks the return row, re-checks the allowed from-states, raises a domain error
(or returns quietly when the work is already done), saves with ``update_fields`` and writes an
audit event. Rows are always locked in the same order: invoice, then return request, then
red-letter form, so concurrent actions on one invoice queue up instead of deadlocking.
Side effects (the processing task, SMS) leave only on commit.
"""

import datetime as dt
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from celery import Task
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from invoices.exceptions import DomainError
from invoices.models import Invoice, Issuer, ReversalReason
from invoices.services import business_tz
from invoices.taxsystem.interface import ResultStatus, TaxResult
from invoices.taxsystem.services import (
    is_form_number,
    tax_backends_answering_by_themselves,
    tax_outcome_correct,
    tax_outcome_record,
    tax_poll_after_seconds,
    tax_request_open,
    tax_request_query,
    tax_request_refuse,
    tax_request_submit,
)
from notifications.enqueue import enqueue_on_commit
from notifications.models import SmsPurpose
from notifications.segments import fit_one_segment
from notifications.services import sms_message_queue
from returns.exceptions import (
    InvalidReturnReason,
    InvalidUpload,
    InvoiceNotEligibleForReturn,
    ReturnAlreadyOpen,
    ReturnNotCancellable,
    ReturnProcessingError,
    ReturnStateConflict,
    UnknownInvoice,
)
from returns.models import (
    FormReviewState,
    MailReceipt,
    RedLetterForm,
    ReturnEvent,
    ReturnOutcomeChoice,
    ReturnProblem,
    ReturnRequest,
    ReturnState,
)
from returns.selectors import (
    invoice_return_refusal,
    mail_receipt_matchable,
    red_letter_form_current,
    return_blocking_for_invoice,
    returns_awaiting_tax_system,
    returns_stuck_processing,
)
from returns.uploads import sniff_red_letter_form

logger = logging.getLogger(__name__)

REASON_MAX = 500
# At most this many returns are re-enqueued per sweep; the next sweep takes the rest.
REQUEUE_BATCH = 500
# Who acts: the logged-in customer or staff member, or None when the system itself does it.
# ``User`` is settings.AUTH_USER_MODEL (Django's own; the project sets no custom user model).
Actor = User | None


def return_event_record(
    *,
    return_request: ReturnRequest,
    actor: Actor,
    from_state: str,
    to_state: str,
    note: str = "",
) -> ReturnEvent:
    """The audit trail (R11): who (None for the system), when, from, to and why."""
    return ReturnEvent.objects.create(
        return_request=return_request,
        actor=actor,
        from_state=from_state,
        to_state=to_state,
        note=note[:REASON_MAX],
    )


Note = str | Promise | Callable[[], str]


def _transition(
    rr: ReturnRequest, *, to_state: str, actor: Actor, note: Note = "", fields: tuple[str, ...] = ()
) -> None:
    """Change state and record it. The customer reads the timeline, so a note the system words
    (a lazy string, or a callable for one with values) is rendered in the customer's language;
    text a person typed is kept as typed."""
    from_state = rr.state
    rr.state = to_state
    rr.save(update_fields=["state", "updated_at", *fields])
    with translation.override(rr.invoice.customer.language):
        text = note() if callable(note) else str(note)
    return_event_record(
        return_request=rr, actor=actor, from_state=from_state, to_state=to_state, note=text
    )


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidReturnReason(_("Please say why you are returning this invoice."))
    if len(reason) > REASON_MAX:
        raise InvalidReturnReason(
            _("The reason is %(count)d characters long; at most 500 are allowed.")
            % {"count": len(reason)}
        )
    return reason


def _lock_return(return_request_id: int) -> ReturnRequest:
    """Lock the invoice first, then the return (the one lock order of this module)."""
    invoice_id = (
        ReturnRequest.objects.filter(pk=return_request_id)
        .values_list("invoice_id", flat=True)
        .get()
    )
    Invoice.objects.select_for_update().filter(pk=invoice_id).get()
    return (
        ReturnRequest.objects.select_for_update(of=("self",))
        .select_related("invoice", "invoice__customer", "mail_receipt")
        .get(pk=return_request_id)
    )


def _check_form_number(form_number: str) -> str:
    form_number = "".join((form_number or "").split())  # as typed: "4403 2626 0001 2345"
    if not form_number:
        raise InvalidUpload(_("Enter the red-letter information form number."))
    if not is_form_number(form_number):
        raise InvalidUpload(
            _("The red-letter information form number is the 16 digits the tax system gave.")
        )
    return form_number


def _form_create(
    rr: ReturnRequest, *, upload: UploadedFile, form_number: str, actor: Actor
) -> RedLetterForm:
    sniffed = sniff_red_letter_form(upload, return_request=rr)
    form = RedLetterForm(
        return_request=rr,
        content_type=sniffed.content_type,
        size=sniffed.size,
        sha256=sniffed.sha256,
        form_number=form_number,
        uploaded_by=actor,
    )
    # Stored under its content hash: a rolled-back upload leaves at most an orphan file that the
    # same scan would overwrite, never a row pointing at a missing file.
    form.file.save("scan", sniffed.file, save=False)
    form.save()
    return form


@transaction.atomic
def return_request_submit(
    *,
    invoice_id: int,
    customer_id: int,
    actor: User,
    reason: str,
    problem: str = ReturnProblem.OTHER,
    reason_code: str = ReversalReason.ISSUING_ERROR,
    certified: bool | None = None,
    courier: str = "",
    tracking_number: str = "",
    red_letter_form: UploadedFile | None = None,
    red_letter_form_number: str = "",
) -> ReturnRequest:
    """The customer clicks Refund and confirms (R1, R2, R3, R4).

    The invoice row is locked first: a double click, a double submit or two tabs queue on that
    lock and the second sees the first's return (``ReturnAlreadyOpen``). The partial unique
    constraint is the last line of defence.
    """
    reason = _clean_reason(reason)
    if problem not in ReturnProblem.values:
        raise InvalidReturnReason(_("Choose what was wrong with the invoice."))
    if reason_code not in ReversalReason.values:
        raise InvalidReturnReason(_("Choose the reason code for the tax system."))
    invoice = (
        # Lock the invoice row only: the customer row is locked by ledger writes, always after
        # the invoice, and locking both here in one statement could deadlock with them.
        Invoice.objects.select_for_update(of=("self",))
        .filter(pk=invoice_id, customer_id=customer_id)
        .select_related("customer")
        .first()
    )
    if invoice is None:
        # Another customer's invoice looks exactly like one that does not exist (R12).
        raise InvoiceNotEligibleForReturn(_("No such invoice."))
    refusal = invoice_return_refusal(invoice=invoice)  # R1, the same words the Refund page shows
    if refusal is not None:
        raise InvoiceNotEligibleForReturn(refusal)
    if return_blocking_for_invoice(invoice_id=invoice.pk) is not None:
        raise ReturnAlreadyOpen()
    if invoice.is_special:
        if certified is None:
            raise InvalidReturnReason(_("Please answer: has this invoice been certified?"))
    else:
        certified = False
    if red_letter_form is not None and not certified:
        raise InvalidUpload(_("A red-letter information form is only needed when certified."))
    if red_letter_form is not None:
        red_letter_form_number = _check_form_number(red_letter_form_number)

    try:
        with transaction.atomic():
            rr = ReturnRequest.objects.create(
                invoice=invoice,
                reason=reason,
                problem=problem,
                reason_code=reason_code,
                certified=bool(certified),
                courier=courier.strip()[:64],
                tracking_number=tracking_number.strip()[:64],
                submitted_by=actor,
            )
    except IntegrityError as exc:
        raise ReturnAlreadyOpen() from exc
    return_event_record(
        return_request=rr, actor=actor, from_state="", to_state=ReturnState.SUBMITTED, note=reason
    )
    if red_letter_form is not None:
        _form_create(rr, upload=red_letter_form, form_number=red_letter_form_number, actor=actor)

    receipt = mail_receipt_matchable(invoice_id=invoice.pk)
    if receipt is not None:
        # The paper was logged by finance before this submit: they received it, not the customer.
        _match_receipt(rr, receipt=receipt, actor=receipt.received_by)
    return rr


@transaction.atomic
def return_request_cancel(*, return_request_id: int, actor: Actor) -> ReturnRequest:
    """Withdraw a return before its paper is logged (R9). Cancelling twice is a no-op."""
    rr = _lock_return(return_request_id)
    if rr.state == ReturnState.CANCELLED:
        return rr
    if rr.state != ReturnState.SUBMITTED:
        raise ReturnNotCancellable()
    _transition(
        rr, to_state=ReturnState.CANCELLED, actor=actor, note=gettext_lazy("Cancelled by customer")
    )
    _withdraw_pending_forms(rr)
    return rr


def _withdraw_pending_forms(rr: ReturnRequest) -> None:
    """A closed return's unreviewed form leaves the reviewers' queue."""
    RedLetterForm.objects.filter(return_request=rr, review_state=FormReviewState.PENDING).update(
        review_state=FormReviewState.WITHDRAWN
    )


@transaction.atomic
def return_request_update_tracking(
    *, return_request_id: int, actor: Actor, courier: str, tracking_number: str
) -> ReturnRequest:
    """The customer adds or corrects how the paper was sent, while it is on its way."""
    rr = _lock_return(return_request_id)
    if rr.state != ReturnState.SUBMITTED:
        raise ReturnStateConflict(_("The paper has already been received."))
    rr.courier = courier.strip()[:64]
    rr.tracking_number = tracking_number.strip()[:64]
    rr.save(update_fields=["courier", "tracking_number", "updated_at"])
    return rr


@transaction.atomic
def return_request_reject(*, return_request_id: int, actor: Actor, reason: str) -> ReturnRequest:
    """Finance rejects a return (e.g. incomplete paper) with a reason the customer sees (R5)."""
    reason = _clean_reason(reason)
    rr = _lock_return(return_request_id)
    if rr.state == ReturnState.REJECTED:
        return rr
    if rr.state not in (ReturnState.SUBMITTED, ReturnState.RECEIVED):
        raise ReturnStateConflict(_("Only a return that is not yet processing can be rejected."))
    _reject(rr, reason=reason, actor=actor)
    return rr


def _reject(rr: ReturnRequest, *, reason: str, actor: Actor) -> None:
    rr.rejection_reason = reason[:REASON_MAX]
    _transition(
        rr, to_state=ReturnState.REJECTED, actor=actor, note=reason, fields=("rejection_reason",)
    )
    _withdraw_pending_forms(rr)
    _sms_queue(
        rr,
        purpose=SmsPurpose.RETURN_REJECTED,
        render=lambda: fit_one_segment(
            lambda reason: (
                _("Your return of invoice %(number)s was rejected: %(reason)s")
                % {"number": rr.invoice.number, "reason": reason}
            ),
            rr.rejection_reason,
        ),
    )


def _match_receipt(rr: ReturnRequest, *, receipt: MailReceipt, actor: Actor) -> None:
    """Attach logged paper to a submitted return: complete → received (and on), else rejected."""
    rr.mail_receipt = receipt
    # A certified special invoice's return does not need its paper (R4): whatever came is kept
    # and never makes the return incomplete.
    missing = [] if rr.needs_red_letter_form else receipt.missing_parts()
    if missing:
        rr.save(update_fields=["mail_receipt", "updated_at"])
        # The customer reads this reason (portal, SMS): word it in their language.
        with translation.override(rr.invoice.customer.language):
            rejection = _("The returned paper is incomplete: missing %(parts)s.") % {
                "parts": ", ".join(receipt.missing_parts())
            }
        _reject(rr, reason=rejection, actor=actor)
        return
    _transition(
        rr,
        to_state=ReturnState.RECEIVED,
        actor=actor,
        note=lambda: (
            _("Paper received on %(date)s")
            % {"date": f"{timezone.localtime(receipt.received_at, business_tz()):%Y-%m-%d}"}
        ),
        fields=("mail_receipt",),
    )
    _advance_if_ready(rr, actor=actor)
    if rr.state == ReturnState.RECEIVED:
        # Only when the return has to wait (for the red-letter form): otherwise the
        # "completed" text follows within seconds and this one would be noise.
        _sms_queue(
            rr,
            purpose=SmsPurpose.RETURN_RECEIVED,
            render=lambda: (
                _("We have received the paper invoice %(number)s you returned.")
                % {"number": rr.invoice.number}
            ),
        )


def _advance_if_ready(rr: ReturnRequest, *, actor: Actor) -> None:
    """R4: the paper in and complete → processing. A certified special invoice waits for the
    buyer's approved red-letter information form instead of its paper: the buyer keeps the
    invoice it booked and certified, so nothing is mailed (paper that comes anyway is kept)."""
    if rr.needs_red_letter_form:
        if rr.state not in (ReturnState.SUBMITTED, ReturnState.RECEIVED):
            return
        form = red_letter_form_current(return_request_id=rr.pk)
        if form is None or form.review_state != FormReviewState.APPROVED:
            return
        note = gettext_lazy("Red-letter information form approved: ready to process")
    elif rr.state == ReturnState.RECEIVED:
        note = gettext_lazy("Ready to process")
    else:
        return
    _transition(rr, to_state=ReturnState.PROCESSING, actor=actor, note=note)
    from returns.tasks import return_process_task

    enqueue_on_commit(return_process_task, rr.pk)


class MailReceiptOutcome(enum.StrEnum):
    MATCHED = "matched"  # matched to a submitted return; see the return's state
    UNMATCHED = "unmatched"  # logged; waits for the customer's online return
    DUPLICATE = "duplicate"  # this paper was already logged: nothing saved


@dataclass(frozen=True)
class MailReceiptResult:
    outcome: MailReceiptOutcome
    receipt: MailReceipt
    return_request: ReturnRequest | None


@transaction.atomic
def mail_receipt_log(
    *,
    invoice_code: str,
    invoice_number: str,
    actor: User,
    invoice_form_present: bool,
    deduction_form_present: bool,
    undamaged: bool,
    received_at: dt.datetime | None = None,
    courier: str = "",
    tracking_number: str = "",
    notes: str = "",
) -> MailReceiptResult:
    """Finance logs a received paper invoice (R4, R5), in either order with the return.

    The invoice row is locked, so paper logged at the same moment as the customer submits is
    matched exactly once, whichever commits first.
    """
    invoice = (
        Invoice.objects.select_for_update()
        .filter(code=invoice_code.strip(), number=invoice_number.strip())
        .first()
    )
    if invoice is None:
        raise UnknownInvoice(
            _("No invoice has code %(code)s and number %(number)s: check the entry.")
            % {"code": invoice_code, "number": invoice_number}
        )
    if invoice.issuer != Issuer.PROVIDER:
        raise InvoiceNotEligibleForReturn(
            _("Issued by %(issuer)s: it is not returned here.") % {"issuer": invoice.issuer_name}
        )
    rr = return_blocking_for_invoice(invoice_id=invoice.pk)
    if rr is not None and rr.mail_receipt is not None:
        return MailReceiptResult(MailReceiptOutcome.DUPLICATE, rr.mail_receipt, rr)
    if rr is not None and rr.state != ReturnState.SUBMITTED:
        # A certified special invoice's return went ahead on the buyer's approved form; its
        # paper came anyway. Log it (finance holds it), attached to nothing.
        rr = None
    if rr is None:
        waiting = mail_receipt_matchable(invoice_id=invoice.pk)
        corrected = (
            invoice_form_present
            and undamaged
            and (deduction_form_present or not invoice.is_special)
        )
        if (
            waiting is not None
            and not waiting.return_requests.exists()
            and (waiting.is_complete or not corrected)
        ):
            # The same envelope again. Complete paper after incomplete paper is not a
            # duplicate but a correction: it is saved, and the newest complete paper is matched.
            return MailReceiptResult(MailReceiptOutcome.DUPLICATE, waiting, None)

    receipt = MailReceipt.objects.create(
        invoice=invoice,
        received_at=received_at or timezone.now(),
        received_by=actor,
        courier=courier.strip()[:64],
        tracking_number=tracking_number.strip()[:64],
        invoice_form_present=invoice_form_present,
        deduction_form_present=deduction_form_present and invoice.is_special,
        undamaged=undamaged,
        notes=notes.strip(),
    )
    if rr is None:
        return MailReceiptResult(MailReceiptOutcome.UNMATCHED, receipt, None)
    rr = (
        ReturnRequest.objects.select_for_update(of=("self",))
        .select_related("invoice", "invoice__customer")
        .get(pk=rr.pk)
    )
    _match_receipt(rr, receipt=receipt, actor=actor)
    return MailReceiptResult(MailReceiptOutcome.MATCHED, receipt, rr)


@transaction.atomic
def red_letter_form_upload(
    *, return_request_id: int, actor: Actor, upload: UploadedFile, form_number: str
) -> RedLetterForm:
    """Upload or replace the red-letter form of a certified special invoice's return (R3)."""
    form_number = _check_form_number(form_number)
    rr = _lock_return(return_request_id)
    if not rr.needs_red_letter_form:
        raise InvalidUpload(_("This return does not need a red-letter information form."))
    if rr.state not in (ReturnState.SUBMITTED, ReturnState.RECEIVED):
        raise ReturnStateConflict(_("The red-letter form can no longer be changed."))
    current = red_letter_form_current(return_request_id=rr.pk)
    if current is not None and current.review_state == FormReviewState.APPROVED:
        raise ReturnStateConflict(_("The red-letter form is already approved."))
    if current is not None:
        current.review_state = FormReviewState.REPLACED
        current.save(update_fields=["review_state"])
    return _form_create(rr, upload=upload, form_number=form_number, actor=actor)


@transaction.atomic
def red_letter_form_review(
    *, red_letter_form_id: int, reviewer: User, approve: bool, reason: str = ""
) -> RedLetterForm:
    """An admin reviewer approves or rejects a form scan. Approving completes R4 when the
    paper is in; rejecting a form whose paper is in rejects the return (DESIGN.md states).
    Reviewing the same way twice is a no-op."""
    return_request_id = (
        RedLetterForm.objects.filter(pk=red_letter_form_id)
        .values_list("return_request_id", flat=True)
        .get()
    )
    rr = _lock_return(return_request_id)
    form = RedLetterForm.objects.select_for_update().get(pk=red_letter_form_id)
    wanted = FormReviewState.APPROVED if approve else FormReviewState.REJECTED
    if form.review_state == wanted:
        return form
    if rr.state not in (ReturnState.SUBMITTED, ReturnState.RECEIVED):
        raise ReturnStateConflict(
            _("This return is %(state)s: its form can no longer be reviewed.")
            % {"state": rr.get_state_display().lower()}
        )
    if form.review_state != FormReviewState.PENDING:
        raise ReturnStateConflict(_("This form has already been reviewed or replaced."))
    reason = (reason or "").strip()
    if not approve and not reason:
        raise InvalidReturnReason(_("Say why the form is rejected: the customer will see it."))
    form.review_state = wanted
    form.reviewer = reviewer
    form.reviewed_at = timezone.now()
    form.review_reason = reason[:REASON_MAX]
    form.save(update_fields=["review_state", "reviewer", "reviewed_at", "review_reason"])
    if approve:
        _advance_if_ready(rr, actor=reviewer)
    elif rr.state == ReturnState.RECEIVED:
        with translation.override(rr.invoice.customer.language):
            rejection = _("The red-letter information form was rejected: %(reason)s") % {
                "reason": reason
            }
        _reject(rr, reason=rejection, actor=reviewer)
    else:
        _sms_queue(
            rr,
            purpose=SmsPurpose.FORM_REJECTED,
            render=lambda: fit_one_segment(
                lambda text: (
                    _(
                        "The red-letter form for invoice %(number)s was rejected: %(reason)s. "
                        "Please upload it again."
                    )
                    % {"number": rr.invoice.number, "reason": text}
                ),
                reason,
            ),
            key_suffix=str(form.pk),
        )
    return form


def return_request_process(*, return_request_id: int) -> ReturnRequest:
    """Turn the void-or-reverse decision (R6) into a request to the tax system.

    The return then waits in *awaiting the tax system*; it completes only when the tax
    system's outcome is recorded (``return_request_record_outcome``). Safe to run twice or
    twice at once: the return row is locked and a pending request is reused, never doubled.
    A permanent failure moves the return to *failed* with the error, for staff to retry.
    """
    try:
        return _process(return_request_id)
    except DomainError as exc:
        logger.warning("return %s failed: %s", return_request_id, exc)
        return return_request_mark_failed(return_request_id=return_request_id, error=str(exc))


@transaction.atomic
def _process(return_request_id: int) -> ReturnRequest:
    rr = _lock_return(return_request_id)
    if rr.state != ReturnState.PROCESSING:
        logger.info("return %s is %s: nothing to process", rr.pk, rr.state)
        return rr
    receipt = rr.mail_receipt
    if not rr.needs_red_letter_form and (receipt is None or not receipt.is_complete):
        raise ReturnProcessingError(_("The paper invoice has not been received complete."))
    form_number = ""
    if rr.needs_red_letter_form:
        form = red_letter_form_current(return_request_id=rr.pk)
        if form is None or form.review_state != FormReviewState.APPROVED:
            raise ReturnProcessingError(_("The red-letter information form is not approved."))
        form_number = form.form_number
    tax_request = tax_request_open(
        invoice_id=rr.invoice_id,
        certified=rr.certified,
        reason_code=rr.reason_code,
        buyer_form_number=form_number,
    )
    rr.tax_request = tax_request
    rr.error = ""
    _transition(
        rr,
        to_state=ReturnState.AWAITING_TAX,
        actor=None,
        note=lambda: (
            _("Sent to the tax system: %(operation)s (request %(serial)s)")
            % {"operation": tax_request.get_operation_display(), "serial": tax_request.serial}
        ),
        fields=("tax_request", "error"),
    )
    from returns.tasks import return_tax_submit_task

    enqueue_on_commit(return_tax_submit_task, rr.pk)
    return rr


def return_tax_submit(*, return_request_id: int) -> float | None:
    """Hand the return's request to the tax-system backend, outside any transaction.

    Returns how many seconds to wait before asking for the result, or None when nothing is
    left to ask (the outcome is recorded, the request refused, or finance records it by
    hand). ``TaxSystemTransientError`` is left to the task's retry policy.
    """
    rr = ReturnRequest.objects.select_related("tax_request").filter(pk=return_request_id).first()
    if rr is None or rr.state != ReturnState.AWAITING_TAX or rr.tax_request_id is None:
        return None
    result = tax_request_submit(tax_request_id=rr.tax_request_id)
    return _apply_tax_result(rr, result)


def return_tax_poll(*, return_request_id: int) -> float | None:
    """Ask the tax system for the result of the return's request; like ``return_tax_submit``."""
    rr = ReturnRequest.objects.select_related("tax_request").filter(pk=return_request_id).first()
    if rr is None or rr.state != ReturnState.AWAITING_TAX or rr.tax_request_id is None:
        return None
    result = tax_request_query(tax_request_id=rr.tax_request_id)
    return _apply_tax_result(rr, result)


def _apply_tax_result(rr: ReturnRequest, result: TaxResult) -> float | None:
    if result.status == ResultStatus.DONE:
        return_request_record_outcome(return_request_id=rr.pk, result=result)
        return None
    if result.status == ResultStatus.REFUSED:
        return_request_tax_refused(return_request_id=rr.pk, error=result.error)
        return None
    assert rr.tax_request is not None  # noqa: S101 (checked by the callers)
    return tax_poll_after_seconds(backend_name=rr.tax_request.backend)


@transaction.atomic
def return_request_record_outcome(
    *, return_request_id: int, result: TaxResult, actor: Actor = None
) -> ReturnRequest:
    """Record the tax system's outcome: the invoice is voided or reversed, its total credited
    (R6, R7), the return completed and the success SMS queued (R8), in one transaction.

    Finance records it by hand (manual backend) or the backend's answer does (``actor`` None).
    Recording the same outcome twice is a no-op; two people recording at once queue on the
    invoice lock and the second sees the first's outcome.
    """
    rr = _lock_return(return_request_id)
    if rr.tax_request_id is None:
        raise ReturnStateConflict(_("This return has not been sent to the tax system."))
    if rr.state not in (ReturnState.AWAITING_TAX, ReturnState.FAILED, ReturnState.COMPLETED):
        raise ReturnStateConflict(
            _("This return is %(state)s: there is no outcome to record.")
            % {"state": rr.get_state_display().lower()}
        )
    tax_request = tax_outcome_record(tax_request_id=rr.tax_request_id, result=result, actor=actor)
    if rr.state == ReturnState.COMPLETED:
        return rr
    red = tax_request.red_letter_invoice
    rr.outcome = ReturnOutcomeChoice.REVERSED if red is not None else ReturnOutcomeChoice.VOIDED
    rr.error = ""

    def note() -> str:  # rendered in the customer's language
        if red is not None:
            return _("Red-letter invoice %(code)s %(number)s issued on %(date)s") % {
                "code": red.code,
                "number": red.number,
                "date": red.issued_on.isoformat(),
            }
        return _("Voided in the tax system on %(date)s") % {
            "date": f"{tax_request.voided_on:%Y-%m-%d}"
        }

    _transition(
        rr, to_state=ReturnState.COMPLETED, actor=actor, note=note, fields=("outcome", "error")
    )
    total = rr.invoice.total
    _sms_queue(
        rr,
        purpose=SmsPurpose.RETURN_COMPLETED,
        render=lambda: (
            _(
                "Invoice %(number)s was reversed by red-letter invoice %(red)s; "
                "¥%(total)s is invoiceable again. You may apply for a new invoice."
            )
            % {"number": rr.invoice.number, "red": red.number, "total": total}
            if red is not None
            else _(
                "Invoice %(number)s was voided; ¥%(total)s is invoiceable again. "
                "You may apply for a new invoice."
            )
            % {"number": rr.invoice.number, "total": total}
        ),
    )
    return rr


@transaction.atomic
def return_request_correct_outcome(
    *,
    return_request_id: int,
    actor: User,
    reason: str,
    code: str = "",
    number: str = "",
    issued_on: dt.date | None = None,
    voided_on: dt.date | None = None,
) -> ReturnRequest:
    """An admin reviewer corrects a mistyped outcome (``tax_outcome_correct``); the return's
    timeline says so, in the customer's language, with the reviewer's reason (R11)."""
    rr = _lock_return(return_request_id)
    if rr.state != ReturnState.COMPLETED or rr.tax_request_id is None:
        raise ReturnStateConflict(_("Only a completed return's outcome can be corrected."))
    correction = tax_outcome_correct(
        tax_request_id=rr.tax_request_id,
        actor=actor,
        reason=reason,
        code=code,
        number=number,
        issued_on=issued_on,
        voided_on=voided_on,
    )

    def note() -> str:
        after = ", ".join(correction.after.values())
        return _("Outcome corrected to %(after)s: %(reason)s") % {
            "after": after,
            "reason": correction.reason,
        }

    with translation.override(rr.invoice.customer.language):
        text = str(note())
    return_event_record(
        return_request=rr,
        actor=actor,
        from_state=rr.state,
        to_state=rr.state,
        note=text,
    )
    return rr


@transaction.atomic
def return_request_tax_refused(*, return_request_id: int, error: str) -> ReturnRequest:
    """The tax system refused the request for good: the return fails, visibly, for staff."""
    rr = _lock_return(return_request_id)
    if rr.tax_request_id is None or rr.state != ReturnState.AWAITING_TAX:
        return rr
    tax_request_refuse(tax_request_id=rr.tax_request_id, error=error)
    return _fail(
        rr,
        error=f"The tax system refused the request: {error}",  # for staff, who read both
        note=lambda: _("The tax system refused the request: %(error)s") % {"error": error},
    )


@transaction.atomic
def return_request_mark_failed(*, return_request_id: int, error: str) -> ReturnRequest:
    rr = _lock_return(return_request_id)
    if rr.state not in (ReturnState.PROCESSING, ReturnState.AWAITING_TAX):
        return rr
    return _fail(rr, error=error)


def _fail(rr: ReturnRequest, *, error: str, note: Note | None = None) -> ReturnRequest:
    """*failed*, with the error for staff and a timeline note (the customer's language)."""
    rr.error = error
    _transition(rr, to_state=ReturnState.FAILED, actor=None, note=note or error, fields=("error",))
    return rr


@transaction.atomic
def return_request_retry(*, return_request_id: int, actor: Actor) -> ReturnRequest:
    """Staff retry a failed return once the cause is fixed. A request the tax system still
    holds is submitted again under its own serial; a refused one is replaced by a new one."""
    rr = _lock_return(return_request_id)
    if rr.state == ReturnState.PROCESSING:
        return rr
    if rr.state != ReturnState.FAILED:
        raise ReturnStateConflict(_("Only a failed return can be retried."))
    _transition(
        rr, to_state=ReturnState.PROCESSING, actor=actor, note=gettext_lazy("Retried by staff")
    )
    from returns.tasks import return_process_task

    enqueue_on_commit(return_process_task, rr.pk)
    return rr


def _sms_queue(
    rr: ReturnRequest, *, purpose: str, render: Callable[[], object], key_suffix: str = ""
) -> None:
    """Queue one SMS per return and purpose, in the customer's language, after commit (R8)."""
    customer = rr.invoice.customer
    if not customer.mobile:
        return
    with translation.override(customer.language):
        body = str(render())
    key = f"return:{rr.pk}:{purpose}" + (f":{key_suffix}" if key_suffix else "")
    sms_message_queue(
        to=customer.mobile,
        body=body,
        purpose=purpose,
        idempotency_key=key,
        language=customer.language,
        related_return_id=rr.pk,
    )


@transaction.atomic
def returns_requeue_stuck(*, older_than: dt.timedelta) -> list[int]:
    """The sweeper: publish the processing task again for returns that may have lost theirs.

    A return in *processing* whose row has not changed for ``older_than`` may have no live
    task: the broker was down at commit (``enqueue_on_commit`` logged it), or a message was
    lost. Re-enqueuing is safe because ``return_request_process`` is idempotent. Rows locked
    right now belong to a task that is processing them and are skipped (``skip_locked``), and
    ``updated_at`` is touched so a backlog is not re-enqueued again on every sweep. Returns the
    ids enqueued.
    """
    from returns.tasks import return_process_task

    return _requeue(returns_stuck_processing(), older_than=older_than, task=return_process_task)


@transaction.atomic
def returns_repoll_tax(*, older_than: dt.timedelta) -> list[int]:
    """The sweeper for returns *awaiting the tax system* on an asynchronous backend: submit
    again (the same serial acts once) and so ask for the result. Nothing to do when finance
    records outcomes by hand (the manual backend's requests are left alone)."""
    from returns.tasks import return_tax_submit_task

    waiting = returns_awaiting_tax_system()
    names = waiting.values_list("tax_request__backend", flat=True).distinct()
    answering = tax_backends_answering_by_themselves(names)
    return _requeue(
        waiting.filter(tax_request__backend__in=answering),
        older_than=older_than,
        task=return_tax_submit_task,
    )


def _requeue(
    returns: QuerySet[ReturnRequest], *, older_than: dt.timedelta, task: Task
) -> list[int]:
    ids = list(
        returns.filter(updated_at__lt=timezone.now() - older_than)
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)[:REQUEUE_BATCH]
    )
    if not ids:
        return ids
    # Only the timestamp moves; no state changes, so no audit event.
    ReturnRequest.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    for return_request_id in ids:
        enqueue_on_commit(task, return_request_id)
    logger.warning("re-enqueued %s for %d returns: %s", task.name, len(ids), ids)
    return ids
