"""Reads of the return workflow shared by pages, the back office and the services."""

from django.db.models import Exists, OuterRef, QuerySet

from invoices.models import Customer
from returns.models import (
    BLOCKING_STATES,
    FormReviewState,
    MailReceipt,
    RedLetterForm,
    ReturnRequest,
    ReturnState,
)


def return_blocking_for_invoice(*, invoice_id: int) -> ReturnRequest | None:
    """The return that holds this invoice (open or completed), if any (R2)."""
    return ReturnRequest.objects.filter(invoice_id=invoice_id, state__in=BLOCKING_STATES).first()


def mail_receipt_matchable(*, invoice_id: int) -> MailReceipt | None:
    """Paper for this invoice that a newly submitted return can take (R4).

    That is paper not held by another open or completed return, and either never matched at
    all (logged before the customer submitted) or complete (finance still holds good paper,
    e.g. after a return was rejected because of its red-letter form). Incomplete paper that
    already caused a rejection is never matched again.
    """
    held = ReturnRequest.objects.filter(mail_receipt=OuterRef("pk"), state__in=BLOCKING_STATES)
    ever_matched = ReturnRequest.objects.filter(mail_receipt=OuterRef("pk"))
    candidates = (
        MailReceipt.objects.filter(invoice_id=invoice_id)
        .exclude(Exists(held))
        .annotate(ever_matched=Exists(ever_matched))
        .select_related("invoice")
        .order_by("-received_at", "-id")
    )
    for receipt in candidates:
        if not receipt.ever_matched or receipt.is_complete:
            return receipt
    return None


def red_letter_form_current(*, return_request_id: int) -> RedLetterForm | None:
    return RedLetterForm.objects.filter(
        return_request_id=return_request_id,
        review_state__in=[FormReviewState.PENDING, FormReviewState.APPROVED],
    ).first()


def returns_for_customer(*, customer: Customer) -> QuerySet[ReturnRequest]:
    return ReturnRequest.objects.filter(invoice__customer=customer).select_related("invoice")


def returns_awaiting_paper() -> QuerySet[ReturnRequest]:
    return ReturnRequest.objects.filter(state=ReturnState.SUBMITTED).order_by("created_at")


def returns_stuck_processing() -> QuerySet[ReturnRequest]:
    """Returns in *processing*: each should have a live task; the sweeper re-enqueues them."""
    return ReturnRequest.objects.filter(state=ReturnState.PROCESSING).order_by("updated_at")
