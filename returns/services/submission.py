"""The customer's side of a return (R1-R3, R9) and finance's rejection (R5): submit,
cancel, say how the paper was sent, reject.
"""

from functools import cache

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from core import sql
from core.audit.models import AuditEntry
from core.audit.services import audit_entry_new, audit_record, object_label
from invoices.models import Customer, Invoice, InvoiceMedium, ReversalReason
from invoices.rules import invoice_return_refusal
from invoices.taxsystem.services import is_form_number
from notifications.texts import Params
from returns.exceptions import (
    InvalidReturnReason,
    InvalidUpload,
    InvoiceNotEligibleForReturn,
    ReturnAlreadyOpen,
    ReturnNotCancellable,
    ReturnReferenceTaken,
    ReturnStateConflict,
)
from returns.models import (
    BLOCKING_STATES,
    MailReceipt,
    RejectionReason,
    ReturnEvent,
    ReturnProblem,
    ReturnRequest,
    ReturnState,
)
from returns.rules import (
    invoice_can_be_booked,
    invoice_can_be_certified,
    return_can_be_cancelled,
    return_can_be_rejected,
    return_tracking_can_be_updated,
)
from returns.selectors import mail_receipt_matchable
from returns.services._common import (
    REASON_MAX,
    Actor,
    _advance_if_ready,
    _clean_reason,
    _inserts_in_with,
    _lock_return,
    _reject,
    _transition,
    _withdraw_pending_forms,
    return_event_new,
    return_event_record,
)
from returns.services.paper import _match_receipt
from returns.services.red_letter_forms import _check_form_number, _form_audit, _form_create

# What a submit may name as the problem and the reason code: an enumeration's ``values`` builds
# its list anew on each use (issue 16, P1).
_PROBLEMS = frozenset(ReturnProblem.values)
_REASON_CODES = frozenset(ReversalReason.values)


@cache
def _invoice_locked_sql(lock: str) -> str:
    # Written out (``core.sql``): the ORM spent 1.5 ms of CPU building this statement.
    # Identifiers from the models' metadata; every value is a parameter.
    return (
        f"SELECT {sql.columns(Invoice, 'i')}, {sql.columns(Customer, 'c')}, "  # noqa: S608
        f"(SELECT r.id FROM {ReturnRequest._meta.db_table} AS r WHERE r.invoice_id = i.id "
        f"AND r.state IN ({sql.placeholders(BLOCKING_STATES)}) ORDER BY r.id LIMIT 1) "
        f"FROM {Invoice._meta.db_table} AS i "
        f"JOIN {Customer._meta.db_table} AS c ON c.id = i.customer_id "
        f"WHERE i.id = %s AND i.customer_id = %s{lock}"
    )


def _invoice_locked(*, invoice_id: int, customer_id: int) -> tuple[Invoice, int | None] | None:
    """The customer's invoice, its row locked (FOR UPDATE OF the invoice alone), with its
    customer, and the id of the return that holds it, if any."""
    lock = " FOR UPDATE OF i" if connection.features.has_select_for_update_of else ""
    with sql.prepared_cursor() as cursor:
        cursor.execute(_invoice_locked_sql(lock), [*BLOCKING_STATES, invoice_id, customer_id])
        row = cursor.fetchone()
    if row is None:
        return None
    split = sql.width(Invoice)
    invoice = sql.instance(Invoice, row[:split])
    Invoice.customer.field.set_cached_value(invoice, sql.instance(Customer, row[split:-1]))
    return invoice, row[-1]


# The columns the statement below writes itself: the new return's id, in its event and its
# audit row.
_EVENT_GIVEN = ("return_request_id",)
_AUDIT_GIVEN = ("object_id",)


@cache
def _submitted_rows_sql(paper: bool) -> str:
    # The return, its event and its audit row in one statement (issue 16, P1: three ORM
    # inserts were a third of the Refund POST's CPU). Columns from the models' metadata, every
    # value a parameter (``core.sql.insert_values``: as ``save()`` writes it). A paper return
    # also asks whether finance holds paper of the invoice that was not sent back (R4's
    # candidates): read after the lock, so paper logged while this submit waited is seen.
    paper_logged = (
        f"EXISTS (SELECT 1 FROM {MailReceipt._meta.db_table} AS m "  # noqa: S608
        "WHERE m.invoice_id = %s AND m.sent_back_at IS NULL)"
        if paper
        else "false"
    )
    return (
        f"WITH r AS (INSERT INTO {ReturnRequest._meta.db_table} "  # noqa: S608
        f"({sql.insert_columns(ReturnRequest)}) "
        f"VALUES ({sql.insert_placeholders(ReturnRequest)}) RETURNING id), "
        f"e AS (INSERT INTO {ReturnEvent._meta.db_table} "
        f"({sql.insert_columns(ReturnEvent, _EVENT_GIVEN)}) "
        f"SELECT r.id, {sql.insert_placeholders(ReturnEvent, _EVENT_GIVEN)} FROM r RETURNING id), "
        f"a AS (INSERT INTO {AuditEntry._meta.db_table} "
        f"({sql.insert_columns(AuditEntry, _AUDIT_GIVEN)}) "
        f"SELECT r.id::text, {sql.insert_placeholders(AuditEntry, _AUDIT_GIVEN)} FROM r "
        "RETURNING id) "
        f"SELECT r.id, e.id, a.id, {paper_logged} FROM r, e, a"
    )


def _submitted_rows_insert(rr: ReturnRequest, *, actor: Actor, paper: bool) -> bool:
    """Insert the new return ``rr`` with its event and audit row (``return_event_record``'s
    rows, the reason as their note), and mark the three saved; for a paper return, whether
    finance holds paper of its invoice (R4)."""
    if not _inserts_in_with():
        # SQLite (development) has no INSERT in WITH: the ORM's inserts, one by one.
        rr.save(force_insert=True)
        return_event_record(
            return_request=rr,
            actor=actor,
            from_state="",
            to_state=ReturnState.SUBMITTED,
            note=rr.reason,
        )
        return paper and _paper_logged(rr.invoice_id)
    # The return stamped first (``created_at``), as when it was saved before its rows were made.
    params = sql.insert_values(rr)
    event, audit = return_event_new(
        return_request=rr,
        actor=actor,
        from_state="",
        to_state=ReturnState.SUBMITTED,
        note=rr.reason,
    )
    entry = audit_entry_new(object_type=object_label(rr), object_id=None, **audit)
    params += sql.insert_values(event, _EVENT_GIVEN) + sql.insert_values(entry, _AUDIT_GIVEN)
    if paper:
        params.append(rr.invoice_id)
    with sql.prepared_cursor() as cursor:
        cursor.execute(_submitted_rows_sql(paper), params)
        rr_id, event_id, entry_id, paper_logged = cursor.fetchone()
    sql.saved(rr, rr_id)
    event.return_request = rr  # its id, now there is one
    sql.saved(event, event_id)
    entry.object_id = str(rr_id)
    sql.saved(entry, entry_id)
    return bool(paper_logged)


def _paper_logged(invoice_id: int) -> bool:
    """Whether finance holds paper of this invoice that was not sent back (R4's candidates)."""
    return MailReceipt.objects.filter(invoice_id=invoice_id, sent_back_at__isnull=True).exists()


def _violated_table(exc: IntegrityError) -> str | None:
    """The table whose constraint ``exc`` names (PostgreSQL says; None elsewhere)."""
    return getattr(getattr(exc.__cause__, "diag", None), "table_name", None)


@transaction.atomic
def return_request_submit(
    *,
    invoice_id: int,
    customer_id: int,
    actor: Actor,
    reason: str,
    problem: str = ReturnProblem.OTHER,
    reason_code: str = ReversalReason.ISSUING_ERROR,
    certified: bool | None = None,
    courier: str = "",
    tracking_number: str = "",
    red_letter_form: UploadedFile | None = None,
    red_letter_form_number: str = "",
    buyer_booked: bool | None = None,
    buyer_form_number: str = "",
    envelope_id: int | None = None,
) -> ReturnRequest:
    """The customer clicks Refund and confirms (R1, R2, R3, R4).

    A paper special invoice asks whether it was certified (then the buyer's red-letter
    information form); a digital invoice asks instead whether the buyer booked it or confirmed
    its use (``buyer_booked``), and takes the number of a red-letter confirmation form the
    buyer entered itself (``buyer_form_number``). A digital return mails nothing: it goes to
    processing at once.

    The invoice row is locked first: a double click, a double submit or two tabs queue on that
    lock and the second sees the first's return (``ReturnAlreadyOpen``). The partial unique
    constraint is the last line of defence.
    """
    reason = _clean_reason(reason)
    if problem not in _PROBLEMS:
        raise InvalidReturnReason(_("Choose what was wrong with the invoice."))
    if reason_code not in _REASON_CODES:
        raise InvalidReturnReason(_("Choose the reason code for the tax system."))
    # Lock the invoice row only: the customer row is locked by ledger writes, always after the
    # invoice, and locking both here in one statement could deadlock with them. The return
    # that blocks this one (R2), if any, comes in the same statement.
    locked = _invoice_locked(invoice_id=invoice_id, customer_id=customer_id)
    if locked is None:
        # Another customer's invoice looks exactly like one that does not exist (R12).
        raise InvoiceNotEligibleForReturn(_("No such invoice."))
    invoice, blocking_return_id = locked
    refusal = invoice_return_refusal(invoice)  # R1, the same words the Refund page shows
    if refusal is not None:
        raise InvoiceNotEligibleForReturn(refusal)
    if blocking_return_id is not None:
        raise ReturnAlreadyOpen()
    digital = invoice.is_digital
    if invoice_can_be_certified(invoice):
        if certified is None:
            raise InvalidReturnReason(_("Please answer: has this invoice been certified?"))
    else:
        certified = False
    buyer_form_number = (buyer_form_number or "").strip()
    if invoice_can_be_booked(invoice):
        if buyer_booked is None and not buyer_form_number:
            raise InvalidReturnReason(
                _("Please answer: has the buyer booked this invoice or confirmed its use?")
            )
        if buyer_form_number and not is_form_number(buyer_form_number, InvoiceMedium.DIGITAL):
            raise InvalidReturnReason(
                _("A red-letter confirmation form number is 20 digits: check the number.")
            )
        courier = tracking_number = ""
    else:
        buyer_booked, buyer_form_number = False, ""
    if red_letter_form is not None and not certified:
        raise InvalidUpload(_("A red-letter information form is only needed when certified."))
    if red_letter_form is not None:
        red_letter_form_number = _check_form_number(red_letter_form_number)

    rr = ReturnRequest(
        invoice=invoice,
        medium=invoice.medium,
        invoice_code=invoice.code,  # copies, as the medium: the back office searches them
        invoice_number=invoice.number,
        reason=reason,
        problem=problem,
        reason_code=reason_code,
        certified=bool(certified),
        buyer_booked=bool(buyer_booked),
        buyer_form_number=buyer_form_number,
        courier=courier.strip()[:64],
        tracking_number=tracking_number.strip()[:64],
        submitted_by=actor.person,
        envelope_id=envelope_id,
    )
    try:
        # No savepoint of its own: nothing is written before these rows, and a violation leaves
        # this service at once, rolling back its own transaction (or savepoint, when called
        # inside another). The statement read above the blocking return with its snapshot from
        # before the lock was granted; the partial unique constraint is the last line of defence.
        paper_logged = _submitted_rows_insert(rr, actor=actor, paper=not digital)
    except IntegrityError as exc:
        if _violated_table(exc) not in (None, ReturnRequest._meta.db_table):
            raise  # the event's or the audit row's: a fault, not the customer's doing
        if "reference" in str(exc):
            # Two returns drew the same reference the same day (see ``returns.references``):
            # nothing is saved, and the next attempt draws another.
            raise ReturnReferenceTaken() from exc
        raise ReturnAlreadyOpen() from exc
    if red_letter_form is not None:
        form = _form_create(
            rr, upload=red_letter_form, form_number=red_letter_form_number, actor=actor
        )
        _form_audit(rr, form, actor=actor, action="red_letter_form.uploaded")
    if digital:
        # R4: nothing to mail, straight to processing (the system's doing, within this submit)
        _advance_if_ready(rr, actor=Actor.system("returns.services.return_request_submit"))
        return rr

    # Most returns have no paper logged: a cheap test first (with the insert, after the lock),
    # the matching rules only when there is paper.
    receipt = mail_receipt_matchable(invoice_id=invoice.pk) if paper_logged else None
    if receipt is not None:
        # The paper was logged by finance before this submit: they received it, not the customer.
        _match_receipt(rr, receipt=receipt, actor=Actor.staff(receipt.received_by))
    return rr


@transaction.atomic
def return_request_cancel(*, return_request_id: int, actor: Actor) -> ReturnRequest:
    """Withdraw a return before its paper is logged (R9). Cancelling twice is a no-op."""
    rr = _lock_return(return_request_id)
    if rr.state == ReturnState.CANCELLED:
        return rr
    if not return_can_be_cancelled(rr):
        raise ReturnNotCancellable()
    _transition(rr, to_state=ReturnState.CANCELLED, actor=actor, key="return.cancelled_by_customer")
    _withdraw_pending_forms(rr)
    return rr


@transaction.atomic
def return_request_update_tracking(
    *, return_request_id: int, actor: Actor, courier: str, tracking_number: str
) -> ReturnRequest:
    """The customer adds or corrects how the paper was sent, while it is on its way."""
    rr = _lock_return(return_request_id)
    if not return_tracking_can_be_updated(rr):
        raise ReturnStateConflict(_("The paper has already been received."))
    before = {"courier": rr.courier, "tracking_number": rr.tracking_number}
    rr.courier = courier.strip()[:64]
    rr.tracking_number = tracking_number.strip()[:64]
    rr.save(update_fields=["courier", "tracking_number", "updated_at"])
    audit_record(
        actor=actor,
        action="return.tracking_edited",
        obj=rr,
        customer_id=rr.invoice.customer_id,
        params={"courier": rr.courier, "tracking_number": rr.tracking_number, "before": before},
    )
    return rr


@transaction.atomic
def return_rejection_check(
    *, reason: str = "", rejection_choice_id: int | None = None
) -> tuple[str, RejectionReason | None]:
    """What finance gave as a rejection's reason, checked (R5): finance's own words, cleaned,
    and the listed reason, if one was chosen; a ``DomainError`` saying what is missing or
    wrong. Asked once before a background rejection of many returns, then by each."""
    if rejection_choice_id is None:
        return _clean_reason(reason), None
    note = (reason or "").strip()
    if len(note) > REASON_MAX:
        note = _clean_reason(note)  # says how long it is
    choice = RejectionReason.objects.filter(pk=rejection_choice_id, active=True).first()
    if choice is None:
        raise InvalidReturnReason(_("Choose a rejection reason from the list."))
    return note, choice


def return_request_reject(
    *,
    return_request_id: int,
    actor: Actor,
    reason: str = "",
    rejection_choice_id: int | None = None,
) -> ReturnRequest:
    """Finance rejects a return (e.g. incomplete paper) with a reason the customer sees (R5):
    a reason from the list (``rejection_choice_id``), text of its own (``reason``), or both.
    The return keeps both; ``rejection_reason`` holds them together in the customer's
    language, for the SMS; the timeline words the listed reason in the reader's language."""
    note, choice = return_rejection_check(reason=reason, rejection_choice_id=rejection_choice_id)
    rr = _lock_return(return_request_id)
    if rr.state == ReturnState.REJECTED:
        return rr
    if not return_can_be_rejected(rr):
        raise ReturnStateConflict(_("Only a return that is not yet processing can be rejected."))
    rr.rejection_choice = choice
    rr.rejection_note = note
    sms: tuple[str, Params] | None = None  # finance's own words: quoted
    if choice is not None:
        listed = {"en": choice.text_en, "zh-hans": choice.text_zh}  # the customer's language
        sms = (
            ("return_rejected_reason_note", {"reason": listed, "note": note})
            if note
            else ("return_rejected_reason", {"reason": listed})
        )
    _reject(
        rr,
        actor=actor,
        note=note,  # as finance typed it
        key="return.rejected_choice" if choice is not None else "",
        params={"choice": choice.pk} if choice is not None else None,
        fields=("rejection_choice", "rejection_note"),
        sms=sms,
    )
    return rr
