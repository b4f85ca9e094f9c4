"""Paper that comes back (R4, R5): finance logs a mail receipt, in either order with the
online return, and it is matched to the return exactly once.
"""

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.audit.actor import Actor
from core.audit.services import audit_record
from invoices.models import Invoice
from invoices.rules import invoice_issued_by_provider
from invoices.workdays import business_tz
from notifications.texts import in_each_language
from returns.audit import mail_receipt_matched_record, mail_receipt_sent_back_record
from returns.exceptions import (
    InvalidMailReceipt,
    InvoiceNotEligibleForReturn,
    MailReceiptAlreadyHandled,
    ReturnNotAwaitingPaper,
    UnknownInvoice,
)
from returns.messages import PAPER_PARTS
from returns.models import MailReceipt, ReturnRequest, ReturnState
from returns.rules import (
    paper_is_complete,
    paper_missing_part_keys,
    return_needs_red_letter_form,
    return_paper_is_awaited,
)
from returns.selectors import mail_receipt_matchable, return_blocking_for_invoice
from returns.services._common import _advance_if_ready, _notify, _reject, _transition


def _match_receipt(rr: ReturnRequest, *, receipt: MailReceipt, actor: Actor) -> None:
    """Attach logged paper to a submitted return: complete → received (and on), else rejected."""
    rr.mail_receipt = receipt
    # A certified special invoice's return does not need its paper (R4): whatever came is kept
    # and never makes the return incomplete.
    missing = [] if return_needs_red_letter_form(rr) else paper_missing_part_keys(receipt)
    if missing:
        rr.save(update_fields=["mail_receipt", "updated_at"])
        words = in_each_language(lambda: _list_in_words([str(PAPER_PARTS[p]) for p in missing]))
        _reject(
            rr,
            actor=actor,
            key="paper.incomplete",
            params={"parts": missing},
            sms=("return_rejected_paper_incomplete", {"parts": words}),
        )
        return
    received_on = f"{timezone.localtime(receipt.received_at, business_tz()):%Y-%m-%d}"
    _transition(
        rr,
        to_state=ReturnState.RECEIVED,
        actor=actor,
        key="paper.received_on",
        params={"date": received_on},
        fields=("mail_receipt",),
    )
    _advance_if_ready(rr, actor=actor)
    if rr.state == ReturnState.RECEIVED:
        # Only when the return has to wait (for the red-letter form): otherwise the
        # "completed" text follows within seconds and this one would be noise. The event is
        # the paper's arrival: paper matched again to a later return (after its form was
        # rejected) was already told of, and is not told again.
        _notify(
            rr,
            template="return_received",
            params={"number": rr.invoice.number},
            event=f"mail_receipt:{receipt.pk}:received",
        )


def _list_in_words(items: list[str]) -> str:
    """ "a, b" in English, "a、b" in Chinese (the active language)."""
    separator = "、" if (translation.get_language() or "").startswith("zh") else ", "
    return separator.join(items)


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
    actor: Actor,
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
    return _log_locked(
        invoice,
        actor=actor,
        parts=EnvelopeItem(invoice.pk, invoice_form_present, deduction_form_present, undamaged),
        received_at=received_at or timezone.now(),
        courier=courier,
        tracking_number=tracking_number,
        notes=notes,
    )


@dataclass(frozen=True)
class EnvelopeItem:
    """One invoice in an envelope, with the parts finance found of it (R5)."""

    invoice_id: int
    invoice_form_present: bool
    deduction_form_present: bool
    undamaged: bool


@transaction.atomic
def mail_envelope_log(
    *,
    items: Sequence[EnvelopeItem],
    actor: Actor,
    received_at: dt.datetime | None = None,
    courier: str = "",
    tracking_number: str = "",
    notes: str = "",
) -> list[MailReceiptResult]:
    """One envelope holding one or more invoices: each is logged as ``mail_receipt_log`` logs
    one (matched to its return, or waiting unmatched), with the envelope's courier, tracking
    number and time. All or nothing: when one invoice is refused, nothing is saved. The
    invoices are locked together, in primary-key order. Results in the order given."""
    if not items:
        raise InvalidMailReceipt(_("Scan at least one invoice for this envelope."))
    ids = [item.invoice_id for item in items]
    if len(set(ids)) != len(ids):
        raise InvalidMailReceipt(_("The same invoice is twice in this envelope."))
    invoices = {
        invoice.pk: invoice
        for invoice in Invoice.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    if len(invoices) != len(ids):
        raise UnknownInvoice()
    at = received_at or timezone.now()
    return [
        _log_locked(
            invoices[item.invoice_id],
            actor=actor,
            parts=item,
            received_at=at,
            courier=courier,
            tracking_number=tracking_number,
            notes=notes,
        )
        for item in items
    ]


def _log_locked(
    invoice: Invoice,
    *,
    actor: Actor,
    parts: EnvelopeItem,
    received_at: dt.datetime,
    courier: str,
    tracking_number: str,
    notes: str,
) -> MailReceiptResult:
    """Log paper of an invoice whose row the caller has locked."""
    if not invoice_issued_by_provider(invoice):
        raise InvoiceNotEligibleForReturn(
            _("Issued by %(issuer)s: it is not returned here.") % {"issuer": invoice.issuer_name}
        )
    if invoice.is_digital:
        raise InvoiceNotEligibleForReturn(
            _("Invoice %(number)s is digital: it has no paper and is returned online only.")
            % {"number": invoice.number}
        )
    rr = return_blocking_for_invoice(invoice_id=invoice.pk)
    if rr is not None and rr.mail_receipt is not None:
        return MailReceiptResult(MailReceiptOutcome.DUPLICATE, rr.mail_receipt, rr)
    if rr is not None and rr.state != ReturnState.SUBMITTED:
        # A certified special invoice's return went ahead on the buyer's approved form; its
        # paper came anyway. Log it (finance holds it), attached to nothing.
        rr = None
    receipt = MailReceipt(
        invoice=invoice,
        received_at=received_at,
        received_by=actor.person,
        courier=courier.strip()[:64],
        tracking_number=tracking_number.strip()[:64],
        invoice_form_present=parts.invoice_form_present,
        deduction_form_present=parts.deduction_form_present and invoice.is_special,
        undamaged=parts.undamaged,
        notes=notes.strip(),
    )
    if rr is None:
        waiting = mail_receipt_matchable(invoice_id=invoice.pk)
        if (
            waiting is not None
            and not waiting.return_requests.exists()
            and (paper_is_complete(waiting) or not paper_is_complete(receipt))
        ):
            # The same envelope again. Complete paper after incomplete paper is not a
            # duplicate but a correction: it is saved, and the newest complete paper is matched.
            return MailReceiptResult(MailReceiptOutcome.DUPLICATE, waiting, None)

    receipt.save()
    if rr is None:
        _paper_logged_record(receipt, actor=actor, outcome=MailReceiptOutcome.UNMATCHED)
        return MailReceiptResult(MailReceiptOutcome.UNMATCHED, receipt, None)
    rr = (
        ReturnRequest.objects.select_for_update(of=("self",))
        .select_related("invoice", "invoice__customer")
        .get(pk=rr.pk)
    )
    _paper_logged_record(receipt, actor=actor, outcome=MailReceiptOutcome.MATCHED, rr=rr)
    _match_receipt(rr, receipt=receipt, actor=actor)
    return MailReceiptResult(MailReceiptOutcome.MATCHED, receipt, rr)


def _paper_logged_record(
    receipt: MailReceipt,
    *,
    actor: Actor,
    outcome: MailReceiptOutcome,
    rr: ReturnRequest | None = None,
) -> None:
    """The audit row of logged paper: what came, complete or not; finance's notes are the
    reason (internal: the customer never sees this row)."""
    audit_record(
        actor=actor,
        action="paper.logged",
        obj=receipt,
        customer_id=receipt.invoice.customer_id,
        params={
            "number": receipt.invoice.number,
            "outcome": str(outcome),
            "return": rr.pk if rr is not None else None,
            "reference": rr.reference if rr is not None else None,
            "missing": paper_missing_part_keys(receipt),
            "tracking_number": receipt.tracking_number,
        },
        reason=receipt.notes,
    )


# --- The unmatched paper queue ------------------------------------------------------------------


def _lock_receipt(mail_receipt_id: int) -> MailReceipt:
    """Lock the receipt's invoice first (the module's lock order), then the receipt."""
    invoice_id = (
        MailReceipt.objects.filter(pk=mail_receipt_id).values_list("invoice_id", flat=True).first()
    )
    if invoice_id is None:
        raise MailReceiptAlreadyHandled(_("No such paper was logged."))
    Invoice.objects.select_for_update().filter(pk=invoice_id).get()
    return (
        MailReceipt.objects.select_for_update(of=("self",))
        .select_related("invoice__customer")
        .get(pk=mail_receipt_id)
    )


def _taken_by(receipt: MailReceipt) -> ReturnRequest | None:
    return receipt.return_requests.order_by("-id").first()


@transaction.atomic
def mail_receipt_match(
    *, mail_receipt_id: int, return_request_id: int, actor: Actor
) -> ReturnRequest:
    """Match unmatched paper to an open return of its invoice that waits for paper, by hand;
    R4 and R5 apply as when the paper is logged (complete → received and on; incomplete →
    rejected with the reason). Matching twice is a no-op; paper sent back, or taken by another
    return, and a return that does not wait for paper are refused."""
    return_invoice_id = (
        ReturnRequest.objects.filter(pk=return_request_id)
        .values_list("invoice_id", flat=True)
        .first()
    )
    receipt_invoice_id = (
        MailReceipt.objects.filter(pk=mail_receipt_id).values_list("invoice_id", flat=True).first()
    )
    if receipt_invoice_id is None:
        raise MailReceiptAlreadyHandled(_("No such paper was logged."))
    if return_invoice_id != receipt_invoice_id:
        raise ReturnNotAwaitingPaper(_("Paper is matched only to a return of its own invoice."))
    Invoice.objects.select_for_update().filter(pk=receipt_invoice_id).get()
    rr = (
        ReturnRequest.objects.select_for_update(of=("self",))
        .select_related("invoice__customer", "mail_receipt")
        .get(pk=return_request_id)
    )
    receipt = MailReceipt.objects.select_for_update(of=("self",)).get(pk=mail_receipt_id)
    if rr.mail_receipt_id == receipt.pk:
        return rr  # matched already (a double submit, or another clerk)
    _refuse_if_handled(receipt)
    if not return_paper_is_awaited(rr):
        raise ReturnNotAwaitingPaper(
            _("Return %(reference)s does not wait for paper: it is %(state)s.")
            % {"reference": rr.reference, "state": rr.get_state_display().lower()}
        )
    receipt.invoice = rr.invoice  # the same row, already locked and loaded
    mail_receipt_matched_record(receipt=receipt, return_request=rr, actor=actor)
    _match_receipt(rr, receipt=receipt, actor=actor)
    return rr


def _refuse_if_handled(receipt: MailReceipt) -> None:
    if receipt.sent_back_at is not None:
        raise MailReceiptAlreadyHandled(
            _("This paper was sent back to the customer on %(date)s (tracking %(tracking)s).")
            % {
                "date": f"{timezone.localtime(receipt.sent_back_at, business_tz()):%Y-%m-%d}",
                "tracking": receipt.sent_back_tracking_number,
            }
        )
    taken = _taken_by(receipt)
    if taken is not None:
        raise MailReceiptAlreadyHandled(
            _("This paper is already matched to return %(reference)s.")
            % {"reference": taken.reference}
        )


@transaction.atomic
def mail_receipt_send_back(
    *, mail_receipt_id: int, actor: Actor, tracking_number: str, courier: str = ""
) -> MailReceipt:
    """Unmatched paper mailed back to the customer, with the courier's tracking number
    (required): it leaves the unmatched paper queue and is never matched again. Sending it
    back again with the same tracking number is a no-op; paper a return took is refused."""
    tracking_number = tracking_number.strip()[:64]
    if not tracking_number:
        raise InvalidMailReceipt(
            _("Enter the courier's tracking number of the envelope sent back to the customer.")
        )
    receipt = _lock_receipt(mail_receipt_id)
    if receipt.sent_back_at is not None and receipt.sent_back_tracking_number == tracking_number:
        return receipt
    _refuse_if_handled(receipt)
    receipt.sent_back_at = timezone.now()
    receipt.sent_back_by = actor.person
    receipt.sent_back_courier = courier.strip()[:64]
    receipt.sent_back_tracking_number = tracking_number
    receipt.save(
        update_fields=[
            "sent_back_at",
            "sent_back_by",
            "sent_back_courier",
            "sent_back_tracking_number",
        ]
    )
    mail_receipt_sent_back_record(receipt=receipt, actor=actor, tracking_number=tracking_number)
    return receipt
