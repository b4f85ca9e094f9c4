"""Reads of the return workflow shared by pages, the back office and the services."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from invoices.models import Customer
from notifications.models import SmsMessage, SmsStatus
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


AGEING_BUCKETS = (("0-3", 0, 3), ("4-7", 4, 7), ("8-14", 8, 14), ("15+", 15, None))


@dataclass(frozen=True)
class BackOfficeOverview:
    counts_by_state: list[tuple[str, str, int]]  # (state, label, count), every state
    ageing: list[tuple[str, int]]  # returns waiting for paper, by days waiting
    sms_failed_last_7_days: int
    failed_awaiting_retry: int


def back_office_overview(*, now: dt.datetime | None = None) -> BackOfficeOverview:
    """The admin index's figures, in three queries."""
    now = now or timezone.now()
    counts = dict(
        ReturnRequest.objects.order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    waiting = ReturnRequest.objects.filter(state=ReturnState.SUBMITTED)
    buckets = {}
    for label, low, high in AGEING_BUCKETS:
        condition = Q(created_at__lte=now - dt.timedelta(days=low))
        if high is not None:
            condition &= Q(created_at__gt=now - dt.timedelta(days=high + 1))
        buckets[label] = Count("id", filter=condition)
    ageing = waiting.aggregate(**buckets)
    return BackOfficeOverview(
        counts_by_state=[
            (state, label, counts.get(state, 0)) for state, label in ReturnState.choices
        ],
        ageing=[(label, ageing[label]) for label, _low, _high in AGEING_BUCKETS],
        sms_failed_last_7_days=SmsMessage.objects.filter(
            status=SmsStatus.FAILED, created_at__gte=now - dt.timedelta(days=7)
        ).count(),
        failed_awaiting_retry=counts.get(ReturnState.FAILED, 0),
    )
