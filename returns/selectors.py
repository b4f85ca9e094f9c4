"""Reads of the return workflow shared by pages, the back office and the services."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from invoices.models import Customer, Invoice, InvoiceState, Issuer
from notifications.models import SmsMessage, SmsStatus
from returns.models import (
    BLOCKING_STATES,
    OPEN_STATES,
    FormReviewState,
    MailReceipt,
    RedLetterForm,
    ReturnEvent,
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
    already caused a rejection is never matched again. Complete paper wins over incomplete
    paper (a corrected envelope), then the newest.
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
    usable = [r for r in candidates if not r.ever_matched or r.is_complete]
    complete_first = sorted(usable, key=lambda receipt: not receipt.is_complete)  # stable sort
    return complete_first[0] if complete_first else None


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
    counts_by_state: list[tuple[str, str | Promise, int]]  # (state, label, count), every state
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


# --- Customer portal reads -----------------------------------------------------------------

INVOICE_STATUS_FILTERS = ("issued", "returning", "voided", "reversed")


def invoices_for_management(*, customer: Customer, status: str = "") -> QuerySet:
    """The Invoice request record: the customer's invoices, each annotated with the return that
    holds it (``return_id``, ``return_state``), in a single query whatever the number of rows.

    ``status`` filters: an invoice state, or ``returning`` (a return is open).
    """
    from django.db.models import Subquery

    from invoices.selectors import invoices_for_customer

    holding = ReturnRequest.objects.filter(
        invoice=OuterRef("pk"), state__in=BLOCKING_STATES
    ).order_by("-id")
    invoices = invoices_for_customer(customer=customer).annotate(
        return_id=Subquery(holding.values("pk")[:1]),
        return_state=Subquery(holding.values("state")[:1]),
    )
    if status == "returning":
        invoices = invoices.filter(return_state__in=OPEN_STATES)
    elif status in INVOICE_STATUS_FILTERS:
        invoices = invoices.filter(state=status)
    return invoices


def return_for_customer(*, customer: Customer, return_request_id: int) -> ReturnRequest | None:
    """One of the customer's returns, or None: another customer's return does not exist (R12)."""
    return (
        returns_for_customer(customer=customer)
        .select_related("invoice__customer")
        .filter(pk=return_request_id)
        .first()
    )


def return_events(*, return_request_id: int) -> QuerySet[ReturnEvent]:
    return ReturnEvent.objects.filter(return_request_id=return_request_id).order_by(
        "created_at", "id"
    )


def red_letter_forms_for_return(*, return_request_id: int) -> QuerySet[RedLetterForm]:
    return RedLetterForm.objects.filter(return_request_id=return_request_id).order_by(
        "-created_at", "-id"
    )


@dataclass(frozen=True)
class TimelineStep:
    key: str
    label: str
    done: bool
    at: dt.datetime | None = None
    skipped: bool = False


def return_timeline(
    *, return_request: ReturnRequest, events: list[ReturnEvent]
) -> list[TimelineStep]:
    """The progress bar of a return: submitted → paper received → form reviewed →
    voided/reversed → SMS sent, each with the time it happened (R11)."""
    from django.utils.translation import gettext as _

    from notifications.models import SmsMessage, SmsPurpose, SmsStatus

    reached: dict[str, dt.datetime] = {}
    for event in events:
        reached.setdefault(event.to_state, event.created_at)
    rr = return_request
    steps = [
        TimelineStep(
            "submitted", _("Submitted"), True, reached.get(ReturnState.SUBMITTED, rr.created_at)
        ),
        TimelineStep(
            "received",
            _("Paper received"),
            ReturnState.RECEIVED in reached,
            reached.get(ReturnState.RECEIVED),
        ),
    ]
    if rr.needs_red_letter_form:
        approved = RedLetterForm.objects.filter(
            return_request=rr, review_state=FormReviewState.APPROVED
        ).first()
        steps.append(
            TimelineStep(
                "form",
                _("Form reviewed"),
                approved is not None,
                approved.reviewed_at if approved else None,
            )
        )
    else:
        steps.append(TimelineStep("form", _("Form reviewed"), False, None, skipped=True))
    if rr.outcome == "reversed":
        label = _("Reversed")
    elif rr.outcome == "voided":
        label = _("Voided")
    else:
        label = _("Voided or reversed")
    steps.append(
        TimelineStep("outcome", label, rr.state == ReturnState.COMPLETED, reached.get("completed"))
    )
    sms = SmsMessage.objects.filter(
        related_return_id=rr.pk,
        purpose=SmsPurpose.RETURN_COMPLETED,
        status__in=[SmsStatus.SENT, SmsStatus.DELIVERED],
    ).first()
    steps.append(TimelineStep("sms", _("SMS sent"), sms is not None, sms.sent_at if sms else None))
    return steps


def invoice_return_refusal(*, invoice: Invoice) -> str | None:
    """Why this invoice cannot be returned now (R1), in words for the customer, or None.

    The one statement of the rule: the Refund page asks before showing the form, and
    ``return_request_submit`` asks again about the invoice it has locked.
    """
    if invoice.issuer != Issuer.PROVIDER:
        return _("Issued by %(issuer)s: contact the service provider.") % {
            "issuer": invoice.issuer_name
        }
    if invoice.state != InvoiceState.ISSUED:
        return _("This invoice is %(state)s and cannot be returned.") % {
            "state": invoice.get_state_display().lower()
        }
    return None
