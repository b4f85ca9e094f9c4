"""Reads of the return workflow shared by pages, the back office and the services."""

import datetime as dt
import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import OrderBy
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from core import sql
from core.audit.actor import ActorKind
from core.audit.models import AuditEntry
from core.audit.services import object_label
from invoices.models import (
    INVOICE_KIND_LABELS,
    BuyerDecision,
    Customer,
    Invoice,
    InvoiceMedium,
    NotifyBy,
    RedLetterInvoice,
    TaxOperation,
    TaxRequest,
    TaxRequestState,
)
from invoices.qr import invoice_qr_disagreements
from invoices.rules import (
    customer_notify_channels,
    invoice_is_returnable,
    invoice_issued_by_provider,
    invoice_return_refusal,
    tax_request_awaits_confirmation_form,
    tax_request_form_has_lapsed,
)
from invoices.tax import money_as_written, rate_as_printed
from invoices.taxsystem.services import local_minute, tax_backend_simulates_buyer
from invoices.workdays import business_tz
from notifications.models import (
    EmailNotification,
    EmailStatus,
    SmsMessage,
    SmsPurpose,
    SmsStatus,
)
from returns.exceptions import InvalidScan, InvoiceNotEligibleForReturn, UnknownInvoice
from returns.messages import CUSTOMER_HISTORY_ACTIONS
from returns.models import (
    BLOCKING_STATES,
    OPEN_STATES,
    FormReviewState,
    MailReceipt,
    RedLetterForm,
    ReturnEnvelope,
    ReturnEvent,
    ReturnRequest,
    ReturnState,
)
from returns.rules import (
    paper_is_complete,
    return_awaits_buyer,
    return_is_digital,
    return_needs_red_letter_form,
)
from returns.scans import Scan, ScanKind


def return_blocking_for_invoice(*, invoice_id: int) -> ReturnRequest | None:
    """The return that holds this invoice (open or completed), if any (R2)."""
    return ReturnRequest.objects.filter(invoice_id=invoice_id, state__in=BLOCKING_STATES).first()


@cache
def _invoice_to_refund_sql() -> str:
    # Identifiers from the models' metadata; every value is a parameter.
    return (
        f"SELECT {sql.columns(Invoice, 'i')}, "  # noqa: S608
        f"(SELECT r.id FROM {ReturnRequest._meta.db_table} AS r WHERE r.invoice_id = i.id "
        f"AND r.state IN ({sql.placeholders(BLOCKING_STATES)}) ORDER BY r.id LIMIT 1) "
        f"FROM {Invoice._meta.db_table} AS i "
        f"JOIN {Customer._meta.db_table} AS c ON c.id = i.customer_id "
        "WHERE i.id = %s AND c.user_id = %s"
    )


def invoice_to_refund_for_user(
    *, user_id: int, invoice_id: int
) -> tuple[Invoice, int | None] | None:
    """The invoice a logged-in customer opens the Refund form on and the id of the return that
    holds it (R2), if any: one statement, where looking up the customer,
    the invoice and the return one by one took three, written out (``core.sql``: the ORM
    spent 1.5 ms of CPU building it). None when the user has no customer account or the
    invoice is another customer's or does not exist (R12: the same answer for each)."""
    with sql.prepared_cursor() as cursor:
        cursor.execute(_invoice_to_refund_sql(), [*BLOCKING_STATES, invoice_id, user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    return sql.instance(Invoice, row[:-1]), row[-1]


def mail_receipt_matchable(*, invoice_id: int) -> MailReceipt | None:
    """Paper for this invoice that a newly submitted return can take (R4).

    That is paper not held by another open or completed return, and either never matched at
    all (logged before the customer submitted) or complete (finance still holds good paper,
    e.g. after a return was rejected because of its red-letter form). Incomplete paper that
    already caused a rejection is never matched again, nor paper sent back to the customer.
    Complete paper wins over incomplete paper (a corrected envelope), then the newest.
    """
    held = ReturnRequest.objects.filter(mail_receipt=OuterRef("pk"), state__in=BLOCKING_STATES)
    ever_matched = ReturnRequest.objects.filter(mail_receipt=OuterRef("pk"))
    candidates = (
        MailReceipt.objects.filter(invoice_id=invoice_id, sent_back_at__isnull=True)
        .exclude(Exists(held))
        .annotate(ever_matched=Exists(ever_matched))
        .select_related("invoice")
        .order_by("-received_at", "-id")
    )
    usable = [r for r in candidates if not r.ever_matched or paper_is_complete(r)]
    # A stable sort: complete paper first, then the newest.
    complete_first = sorted(usable, key=lambda receipt: not paper_is_complete(receipt))
    return complete_first[0] if complete_first else None


# --- The post room ----------------------------------------------------------------------------


def _digital_not_mailed(invoice_number: str) -> InvoiceNotEligibleForReturn:
    return InvoiceNotEligibleForReturn(
        _(
            "Invoice %(number)s is a digital invoice: digital invoices are not mailed, and their "
            "returns are handled online only. Nothing to log."
        )
        % {"number": invoice_number}
    )


def invoice_for_scan(*, scan: Scan) -> Invoice:
    """The invoice a scan stands for, when its paper can be logged: a return slip's return's
    invoice, the invoice with that code and number, or the invoice in the QR code when the
    code agrees with it (type, amount, issue date). Refused with a message otherwise: no such
    invoice, a digital invoice (never mailed), another issuer's invoice, a disagreement."""
    invoice: Invoice | None
    if scan.kind == ScanKind.SLIP:
        rr = (
            ReturnRequest.objects.filter(reference=scan.reference)
            .select_related("invoice__customer")
            .first()
        )
        if rr is None:
            raise UnknownInvoice(
                _("No return has reference %(reference)s: check the slip.")
                % {"reference": scan.reference}
            )
        invoice = rr.invoice
    else:
        if scan.qr is not None and not scan.qr.is_paper:
            raise _digital_not_mailed(scan.qr.number)
        invoice = (
            Invoice.objects.filter(code=scan.code, number=scan.number)
            .select_related("customer")
            .first()
        )
        if invoice is None:
            typed = "".join(scan.text.split())
            if scan.kind == ScanKind.CODE_AND_NUMBER and len(typed) == 20:
                # 20 digits also read as a 12-digit code and a number: a digital invoice's?
                digital = Invoice.objects.filter(code="", number=typed).first()
                if digital is not None:
                    raise _digital_not_mailed(digital.number)
            raise UnknownInvoice(
                _("No invoice has code %(code)s and number %(number)s: check the entry.")
                % {"code": scan.code, "number": scan.number}
            )
    if invoice.is_digital:
        raise _digital_not_mailed(invoice.number)
    if not invoice_issued_by_provider(invoice):
        raise InvoiceNotEligibleForReturn(
            _("Issued by %(issuer)s: it is not returned here.") % {"issuer": invoice.issuer_name}
        )
    if scan.qr is not None:
        problems = invoice_qr_disagreements(
            scan.qr,
            special=invoice.is_special,
            amount=invoice.amount,
            total=invoice.total,
            issued_on=timezone.localtime(invoice.issued_at, business_tz()).date(),
        )
        if problems:
            raise InvalidScan(
                _(
                    "The QR code does not agree with invoice %(invoice)s: %(problems)s. Nothing "
                    "was logged: set the paper aside and check it."
                )
                % {"invoice": invoice, "problems": "; ".join(problems)}
            )
    return invoice


def return_awaiting_paper_for_invoice(*, invoice_id: int) -> ReturnRequest | None:
    """The open return of this invoice that waits for its paper, if any (R4)."""
    return (
        ReturnRequest.objects.filter(
            invoice_id=invoice_id,
            state=ReturnState.SUBMITTED,
            medium=InvoiceMedium.PAPER,
            certified=False,
        )
        .order_by("-id")
        .first()
    )


def mail_receipts_unmatched() -> QuerySet[MailReceipt]:
    """The unmatched paper queue, oldest first: paper logged that no return took (never
    applied for, cancelled, rejected, or not needed), not yet sent back to the customer. Each
    row carries the open return of its invoice that still waits for paper, if any
    (``awaiting_return_id``, ``awaiting_return_reference``): the one it can be matched to."""
    taken = ReturnRequest.objects.filter(mail_receipt=OuterRef("pk"))
    awaiting = ReturnRequest.objects.filter(
        invoice_id=OuterRef("invoice_id"),
        state=ReturnState.SUBMITTED,
        medium=InvoiceMedium.PAPER,
        certified=False,
    ).order_by("-id")
    return (
        MailReceipt.objects.filter(sent_back_at__isnull=True)
        .exclude(Exists(taken))
        .annotate(
            awaiting_return_id=Subquery(awaiting.values("pk")[:1]),
            awaiting_return_reference=Subquery(awaiting.values("reference")[:1]),
        )
        .select_related("invoice__customer", "received_by")
        .order_by("received_at", "id")
    )


def mail_receipts_unmatched_count() -> int:
    """How much paper waits in the unmatched paper queue (the admin index, the post room's
    pages)."""
    return mail_receipts_unmatched().order_by().count()


@dataclass(frozen=True)
class LoggedPaper:
    receipt: MailReceipt
    return_request: ReturnRequest | None  # the return that took it; None: unmatched


def mail_receipts_logged_recently(*, receipt_ids: list[int]) -> list[LoggedPaper]:
    """The receipts a clerk just logged (the post room's "Just logged"), newest first, each
    with the return that took it, if any. Two queries."""
    receipts = (
        MailReceipt.objects.filter(pk__in=receipt_ids)
        .select_related("invoice__customer")
        .prefetch_related(
            Prefetch("return_requests", queryset=ReturnRequest.objects.order_by("-id"))
        )
        .order_by("-id")
    )
    return [
        LoggedPaper(receipt, next(iter(receipt.return_requests.all()), None))
        for receipt in receipts
    ]


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


def returns_awaiting_tax_system() -> QuerySet[ReturnRequest]:
    """Returns whose void or red-letter invoice is requested and not yet recorded (a digital
    one's confirmation form may be awaiting the buyer)."""
    return ReturnRequest.objects.filter(
        state__in=(ReturnState.AWAITING_TAX, ReturnState.AWAITING_BUYER)
    ).order_by("updated_at")


AGEING_BUCKETS = (("0-3", 0, 3), ("4-7", 4, 7), ("8-14", 8, 14), ("15+", 15, None))


@dataclass(frozen=True)
class BackOfficeOverview:
    counts_by_state: list[tuple[str, str | Promise, int]]  # (state, label, count), every state
    ageing: list[tuple[str, int]]  # returns waiting for paper, by days waiting
    sms_failed_last_7_days: int
    emails_failed_last_7_days: int
    failed_awaiting_retry: int


def back_office_overview(*, now: dt.datetime | None = None) -> BackOfficeOverview:
    """The admin index's figures, in four queries."""
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
        emails_failed_last_7_days=EmailNotification.objects.filter(
            status=EmailStatus.FAILED, created_at__gte=now - dt.timedelta(days=7)
        ).count(),
        failed_awaiting_retry=counts.get(ReturnState.FAILED, 0),
    )


# --- Customer portal reads -----------------------------------------------------------------

INVOICE_STATUS_FILTERS = ("issued", "returning", "voided", "reversed")


# Invoice Management's SQL. Only placeholders and these constant fragments are put into it,
# never a value: the values go as parameters (hence the S608s ignored below).
# A column of the return that holds the invoice (R2: one blocking return at most).
_HOLDING = (
    "(SELECT r.{column} FROM returns_returnrequest AS r WHERE r.invoice_id = invoices_invoice.id "  # noqa: S608
    f"AND r.state IN ({sql.placeholders(BLOCKING_STATES)}) ORDER BY r.id DESC LIMIT 1)"
)
_RETURNING = (
    " AND EXISTS (SELECT 1 FROM returns_returnrequest AS r "  # noqa: S608
    f"WHERE r.invoice_id = invoices_invoice.id AND r.state IN ({sql.placeholders(OPEN_STATES)}))"
)
_PAGE = (
    "SELECT {columns}, a.created_at AS applied_at, "  # noqa: S608
    + _HOLDING.format(column="id")
    + " AS return_id, "
    + _HOLDING.format(column="state")
    + " AS return_state, (SELECT COUNT(*) FROM returns_returnrequest AS r "
    "WHERE r.invoice_id = invoices_invoice.id) AS return_count "
    "FROM invoices_invoice "
    "LEFT JOIN invoices_invoiceapplication AS a ON a.id = invoices_invoice.application_id "
    "WHERE {where} "
    "ORDER BY invoices_invoice.issued_at DESC, invoices_invoice.id DESC LIMIT %s OFFSET %s"
)
_RETURNS_OF = (
    "SELECT id, invoice_id, state, created_at FROM returns_returnrequest "
    "WHERE invoice_id IN ({ids}) ORDER BY created_at DESC, id DESC"
)


class ManagementInvoices:
    """The Invoice request record: the customer's invoices, newest first (``Invoice.Meta``'s
    order, read off ``invoice_customer_order_idx``), for a paginator. ``count()`` counts them;
    ``[a:b]`` reads that page in a single query whatever the number of rows, each invoice with
    the return that holds it (``return_id``, ``return_state``), how many it ever had
    (``return_count``) and when it was applied for (``applied_at``: its application's creation,
    else its issue); and, in one more query for the whole page when one of them had a return
    besides the one that holds it, every return those invoices ever had (``all_returns``,
    newest first: rejected and cancelled ones too; empty for an invoice without such a return,
    as ``earlier_returns`` would leave it).

    ``status`` filters: an invoice state, or ``returning`` (a return is open).

    Plain, portable SQL (SQLite in development): the ORM spent more compiling these queries
    than the page spends on everything else it does (issue 16, P2)."""

    def __init__(self, *, customer_id: int, status: str = "") -> None:
        self.where = "invoices_invoice.customer_id = %s"
        self.params: list[str | int] = [customer_id]
        if status == "returning":
            # The holding return is open: one blocking return at most per invoice (R2).
            self.where += _RETURNING
            self.params += list(OPEN_STATES)
        elif status in INVOICE_STATUS_FILTERS:
            self.where += " AND invoices_invoice.state = %s"
            self.params.append(status)

    def count(self) -> int:
        with sql.prepared_cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM invoices_invoice WHERE " + self.where,  # noqa: S608 - see _PAGE
                self.params,
            )
            (count,) = cursor.fetchone()
        return int(count)

    def page_sql(self, offset: int, limit: int) -> tuple[str, list[str | int]]:
        """The page's query and its parameters."""
        blocking: list[str | int] = list(BLOCKING_STATES)
        statement = _PAGE.format(columns=sql.columns(Invoice, "invoices_invoice"), where=self.where)
        return statement, [*blocking, *blocking, *self.params, limit, offset]

    def explain(self, offset: int = 0, limit: int = 20) -> str:
        """The database's plan of a page's query (as ``QuerySet.explain``)."""
        statement, params = self.page_sql(offset, limit)
        with connection.cursor() as cursor:
            cursor.execute(connection.ops.explain_query_prefix() + " " + statement, params)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())

    def __getitem__(self, page: slice) -> list[Invoice]:
        offset = page.start or 0
        statement, params = self.page_sql(offset, page.stop - offset)
        with sql.prepared_cursor() as cursor:
            cursor.execute(statement, params)
            rows = cursor.fetchall()
        # The invoice's own columns become the model instance as the ORM makes it (core.sql),
        # without the raw query set's per-query column mapping; then the four computed ones.
        width = sql.width(Invoice)
        invoices = []
        all_returns: dict[int, list[ReturnRequest]] = {}
        for row in rows:
            invoice = sql.instance(Invoice, row[:width])
            applied_at, return_id, return_state, return_count = row[width:]
            all_returns[invoice.pk] = []
            # A column outside the model's fields: converted as the ORM would (SQLite: text).
            invoice.__dict__.update(
                applied_at=_datetime_from_db(applied_at) or invoice.issued_at,
                return_id=return_id,
                return_state=return_state,
                return_count=return_count,
                all_returns=all_returns[invoice.pk],
            )
            invoices.append(invoice)
        # Only the invoices with a return besides the one that holds them (most have none).
        wanted = [
            invoice.pk
            for invoice in invoices
            if getattr(invoice, "return_count", 0)
            > (1 if getattr(invoice, "return_id", None) else 0)
        ]
        if wanted:
            for rr in ReturnRequest.objects.raw(
                _RETURNS_OF.format(ids=sql.placeholders(wanted)), wanted
            ):
                all_returns[rr.invoice_id].append(rr)
        return invoices


def _datetime_from_db(value: object) -> dt.datetime | None:
    """A datetime read by plain SQL outside a model's fields, as the ORM reads one."""
    value = sql.field_value(Invoice, "issued_at", value)
    return value if isinstance(value, dt.datetime) else None


def invoices_for_management(*, customer: Customer, status: str = "") -> ManagementInvoices:
    """The customer's invoices as Invoice Management pages them (``ManagementInvoices``)."""
    return ManagementInvoices(customer_id=customer.pk, status=status)


def return_for_customer(*, customer: Customer, return_request_id: int) -> ReturnRequest | None:
    """One of the customer's returns, or None: another customer's return does not exist (R12).

    With what its page shows in the same query: the request to the tax system and the
    red-letter invoice, if any (``return_tax_outcome``).
    """
    current = RedLetterInvoice.objects.filter(superseded_at__isnull=True)
    return (
        returns_for_customer(customer=customer)
        .select_related("invoice__customer", "tax_request", "mail_receipt")
        .prefetch_related(
            Prefetch("invoice__red_letter_invoices", queryset=current, to_attr="current_red")
        )
        .filter(pk=return_request_id)
        .first()
    )


def invoices_to_return_by_mail(*, customer: Customer, limit: int = 200) -> list[Invoice]:
    """The customer's paper invoices that can be returned now (R1, R2): what the "Return
    several invoices" page offers to put in one envelope, newest first."""
    from invoices.selectors import invoices_for_customer

    blocking = ReturnRequest.objects.filter(invoice=OuterRef("pk"), state__in=BLOCKING_STATES)
    invoices = (
        invoices_for_customer(customer=customer)
        .filter(medium=InvoiceMedium.PAPER)
        .exclude(Exists(blocking))
        .order_by("-issued_at", "-id")[:limit]
    )
    return [invoice for invoice in invoices if invoice_return_refusal(invoice) is None]


def envelope_for_customer(*, customer: Customer, envelope_id: int) -> ReturnEnvelope | None:
    """One of the customer's envelopes with its returns and their invoices, or None (R12)."""
    return (
        ReturnEnvelope.objects.filter(pk=envelope_id, customer=customer)
        .prefetch_related(
            Prefetch(
                "returns",
                queryset=ReturnRequest.objects.select_related(
                    "invoice", "invoice__customer"
                ).order_by("invoice_id"),
            )
        )
        .first()
    )


def return_to_reapply_from(*, customer: Customer, invoice_id: int) -> ReturnRequest | None:
    """The customer's latest return of this invoice (a completed one is always the latest: it
    blocks any other), or None: another customer's invoice, or one never returned. The caller
    asks ``return_allows_reapplying``."""
    return (
        ReturnRequest.objects.filter(invoice_id=invoice_id, invoice__customer=customer)
        .select_related("invoice", "invoice__application")
        .order_by("-id")
        .first()
    )


def return_events(*, return_request_id: int) -> QuerySet[ReturnEvent]:
    return ReturnEvent.objects.filter(return_request_id=return_request_id).order_by(
        "created_at", "id"
    )


@dataclass(frozen=True)
class HistoryLine:
    """One line of a return's history as its customer reads it: when, what, by whom ("You",
    "Finance" or "System": never a staff member's name)."""

    at: dt.datetime
    title: str
    text: str
    by: str


def _by_for_customer(kind: str) -> str:
    if kind == ActorKind.CUSTOMER:
        return _("You")
    if kind == ActorKind.STAFF:
        return _("Finance")  # never a staff member's name
    return _("System")


def return_history_for_customer(
    *, return_request: ReturnRequest, events: list[ReturnEvent]
) -> list[HistoryLine]:
    """The customer's history of their return, in the reader's language: every state change
    (with the system's words, and what people typed for the customer) and the other actions
    that concern them (shipping details, red-letter forms). Staff-only rows (paper logged,
    exports, SMS resent, internal notes, a failure's raw error) are not shown."""
    lines = [
        HistoryLine(
            at=event.created_at,
            title=event.get_to_state_display(),
            # A failure's raw error is for staff; the page says "delayed" instead.
            text="" if event.to_state == ReturnState.FAILED and not event.note_key else event.text,
            by=_by_for_customer(event.actor_kind),
        )
        for event in events
    ]
    entries = AuditEntry.objects.filter(
        object_type=object_label(return_request),
        object_id=str(return_request.pk),
        action__in=CUSTOMER_HISTORY_ACTIONS,
    ).order_by("at", "id")
    lines += [
        HistoryLine(at=entry.at, title=entry.text, text="", by=_by_for_customer(entry.actor_kind))
        for entry in entries
    ]
    return sorted(lines, key=lambda line: line.at)


def return_rejection_text(*, return_request: ReturnRequest, events: list[ReturnEvent]) -> str:
    """Why the return was rejected, in the reader's language (the stored reason is worded in
    the customer's saved language, for the SMS; old rows have only that)."""
    rejected = [event for event in events if event.to_state == ReturnState.REJECTED]
    if rejected and (rejected[-1].note_key or rejected[-1].note):
        return rejected[-1].text
    return return_request.rejection_reason


def red_letter_forms_for_return(*, return_request_id: int) -> QuerySet[RedLetterForm]:
    return RedLetterForm.objects.filter(return_request_id=return_request_id).order_by(
        "-created_at", "-id"
    )


@dataclass(frozen=True)
class TimelineStep:
    """One step of a return's progress bar.

    ``done`` (with its time ``at``), ``skipped`` (not needed for this return), ``current``
    (what the return waits for now) or ``stopped`` (where a rejected, cancelled or failed
    return ended, or an SMS that could not be sent); ``note`` says which in words.
    """

    key: str
    label: str
    done: bool
    at: dt.datetime | None = None
    skipped: bool = False
    current: bool = False
    stopped: bool = False
    note: str = ""


def return_timeline(
    *, return_request: ReturnRequest, events: list[ReturnEvent]
) -> list[TimelineStep]:
    """The progress bar of a return (R11): submitted → paper received → form reviewed →
    voided or reversed in the tax system → SMS sent, each with the time it happened.

    It tells the truth for every state: a certified special invoice sends no paper (its
    buyer's approved form stands in for it, R4); the tax-system step is done only once the
    outcome is recorded (R6-R8); a rejected, cancelled or failed return shows where it
    stopped and why. Two queries at most (the approved form, the success SMS).
    """
    reached: dict[str, dt.datetime] = {}
    for event in events:
        reached.setdefault(event.to_state, event.created_at)
    rr = return_request
    if return_is_digital(rr):
        return _digital_timeline(rr, events=events, reached=reached)
    steps = [
        TimelineStep(
            "submitted", _("Submitted"), True, reached.get(ReturnState.SUBMITTED, rr.created_at)
        )
    ]
    paper_received = ReturnState.RECEIVED in reached
    if (
        not paper_received
        and rr.state == ReturnState.REJECTED
        and rr.mail_receipt_id is not None
        and not return_needs_red_letter_form(rr)
    ):
        # R5: the paper came and was incomplete. It was received (when finance logged it):
        # the bar says so, and that it was incomplete, before the rejection that followed.
        steps.append(
            TimelineStep(
                "received",
                _("Paper received"),
                True,
                rr.mail_receipt.received_at if rr.mail_receipt else None,
                note=_("Incomplete"),
            )
        )
    elif return_needs_red_letter_form(rr) and not paper_received:
        steps.append(
            TimelineStep("received", _("Paper received"), False, skipped=True, note=_("Not needed"))
        )
    else:
        steps.append(
            TimelineStep(
                "received", _("Paper received"), paper_received, reached.get(ReturnState.RECEIVED)
            )
        )
    if return_needs_red_letter_form(rr):
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
        steps.append(
            TimelineStep("form", _("Form reviewed"), False, skipped=True, note=_("Not needed"))
        )
    completed = rr.state == ReturnState.COMPLETED
    if completed and rr.outcome == "reversed":
        label = _("Reversed in the tax system")
    elif completed and rr.outcome == "voided":
        label = _("Voided in the tax system")
    else:
        label = _("Voided or reversed in the tax system")
    steps.append(TimelineStep("outcome", label, completed, reached.get(ReturnState.COMPLETED)))
    steps.append(_sms_step(rr, completed=completed))
    return _where_it_stands(rr, steps, reached=reached)


# A return in one of these states is over: nothing after where it stopped will happen.
ENDED_STATES = (ReturnState.REJECTED, ReturnState.CANCELLED)


def _where_it_stands(
    rr: ReturnRequest, steps: list[TimelineStep], *, reached: dict[str, dt.datetime]
) -> list[TimelineStep]:
    """Mark where the return stands now: the first step neither done nor skipped is current,
    or where a failed return stopped (unless a step already says so).

    A rejected or cancelled return is over: its bar keeps what happened (each step done, with
    its time) and ends where it stopped, with the rejection or cancellation and its time;
    the steps that will never happen are not drawn as if they still might."""
    if rr.state in ENDED_STATES:
        return _ended(rr, steps, at=reached.get(rr.state))
    if any(step.current or step.stopped for step in steps if step.key != "sms"):
        return steps
    ending: dict[str, str] = {
        ReturnState.FAILED: _("Delayed: finance is looking into it"),
    }
    for index, step in enumerate(steps):
        if step.done or step.skipped or step.stopped or step.key == "sms":
            continue
        if rr.state in ending:
            steps[index] = replace(step, stopped=True, note=str(ending[rr.state]))
        elif rr.state == ReturnState.AWAITING_TAX:
            steps[index] = replace(step, current=True, note=_("Waiting for the tax system"))
        else:
            steps[index] = replace(step, current=True)
        break
    return steps


def _ended(
    rr: ReturnRequest, steps: list[TimelineStep], *, at: dt.datetime | None
) -> list[TimelineStep]:
    """A rejected or cancelled return's bar: up to its last step done, then where it ended. A
    step that already says why it stopped (a buyer who refused or let the form lapse) is that
    end; otherwise an end step says "Rejected" or "Cancelled", with when."""
    stopped = next((i for i, step in enumerate(steps) if step.stopped and step.key != "sms"), None)
    if stopped is not None:
        return steps[: stopped + 1]
    last_done = max(i for i, step in enumerate(steps) if step.done)
    label = _("Rejected") if rr.state == ReturnState.REJECTED else _("Cancelled")
    return [
        *steps[: last_done + 1],
        TimelineStep("ended", label, False, at, stopped=True),
    ]


def _digital_timeline(
    rr: ReturnRequest, *, events: list[ReturnEvent], reached: dict[str, dt.datetime]
) -> list[TimelineStep]:
    """A digital invoice's return (数电票): nothing is mailed, nothing reviewed. Submitted →
    sent to the tax system → [awaiting the buyer's confirmation, when the form went to the
    buyer] → completed (reversed) → SMS sent. The buyer's step shows only once the tax system
    said the buyer must confirm: until then nobody knows (a form the buyer entered itself is
    confirmed by the provider). A refused or lapsed form stops the return at that step."""
    steps = [
        TimelineStep(
            "submitted", _("Submitted"), True, reached.get(ReturnState.SUBMITTED, rr.created_at)
        ),
        TimelineStep(
            "sent",
            _("Sent to the tax system"),
            ReturnState.AWAITING_TAX in reached,
            reached.get(ReturnState.AWAITING_TAX),
        ),
    ]
    tax_request = rr.tax_request
    if ReturnState.AWAITING_BUYER in reached and tax_request is not None:
        decided_at = next(
            (e.created_at for e in events if e.from_state == ReturnState.AWAITING_BUYER), None
        )
        decision = tax_request.buyer_decision
        if decision == BuyerDecision.CONFIRMED:
            steps.append(TimelineStep("buyer", _("Confirmed by the buyer"), True, decided_at))
        elif return_awaits_buyer(rr) and tax_request.confirm_by is not None:
            steps.append(
                TimelineStep(
                    "buyer",
                    _("Awaiting buyer confirmation"),
                    False,
                    current=True,
                    note=_("By %(deadline)s (Beijing time)")
                    % {"deadline": local_minute(tax_request.confirm_by)},
                )
            )
        elif decision and rr.state == ReturnState.REJECTED:
            steps.append(
                TimelineStep(
                    "buyer",
                    _("Buyer's confirmation"),
                    False,
                    stopped=True,
                    note=str(tax_request.get_buyer_decision_display()),
                )
            )
        else:
            steps.append(TimelineStep("buyer", _("Buyer's confirmation"), False))
    elif tax_request is not None and tax_request_awaits_confirmation_form(tax_request):
        # Booked: the provider enters the form first (finance, on a real tax system).
        steps.append(TimelineStep("buyer", _("Buyer's confirmation"), False))
    completed = rr.state == ReturnState.COMPLETED
    steps.append(
        TimelineStep("outcome", _("Completed"), completed, reached.get(ReturnState.COMPLETED))
    )
    steps.append(_sms_step(rr, completed=completed))
    return _where_it_stands(rr, steps, reached=reached)


def _sms_step(rr: ReturnRequest, *, completed: bool) -> TimelineStep:
    """The success SMS (R8): sent after the outcome is recorded, if the customer has a mobile;
    the success email instead for a customer told by email only."""
    customer = rr.invoice.customer
    channels = customer_notify_channels(
        customer, email_possible=settings.NOTIFICATION_EMAIL_ENABLED
    )
    message: SmsMessage | EmailNotification | None
    if NotifyBy.SMS not in channels and NotifyBy.EMAIL in channels:
        label = _("Email sent")
        message = (
            EmailNotification.objects.filter(
                related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED
            )
            .order_by("-id")
            .first()
        )
    else:
        label = _("SMS sent")
        if completed and not customer.mobile:
            return TimelineStep("sms", label, False, skipped=True, note=_("No mobile number"))
        message = (
            SmsMessage.objects.filter(related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED)
            .order_by("-id")
            .first()
        )
    sms = message
    if sms is None:
        return TimelineStep("sms", label, False)
    if sms.status in (SmsStatus.SENT, SmsStatus.DELIVERED):  # an email's "sent" too
        return TimelineStep("sms", label, True, sms.sent_at)
    if sms.status == SmsStatus.FAILED:
        return TimelineStep("sms", label, False, stopped=True, note=_("Could not be sent"))
    return TimelineStep("sms", label, False)


@dataclass(frozen=True)
class TaxOutcome:
    """What the tax system is asked to do for a return, or did (R6): for the return page."""

    operation: str  # TaxOperation: void or red_letter
    recorded: bool
    voided_on: dt.date | None = None
    red_letter: RedLetterInvoice | None = None


def return_tax_outcome(*, return_request: ReturnRequest) -> TaxOutcome | None:
    """The tax system's side of a return, or None before it is asked.

    Reads only what ``return_for_customer`` fetched with the return (no query). A return
    completed before the tax-system boundary has no request: its void date is the day the
    invoice changed state, in Asia/Shanghai, as the migration that backfilled it recorded.
    """
    rr = return_request
    tax_request = rr.tax_request
    if rr.state == ReturnState.COMPLETED:
        if rr.outcome == "reversed":
            prefetched = getattr(rr.invoice, "current_red", None)
            if prefetched is None:
                red = rr.invoice.red_letter_invoice
            else:
                red = prefetched[0] if prefetched else None
            return TaxOutcome(TaxOperation.RED_LETTER, recorded=True, red_letter=red)
        voided_on = tax_request.voided_on if tax_request is not None else None
        if voided_on is None and rr.invoice.state_changed_at is not None:
            voided_on = timezone.localtime(rr.invoice.state_changed_at, business_tz()).date()
        return TaxOutcome(TaxOperation.VOID, recorded=True, voided_on=voided_on)
    if tax_request is not None and rr.state == ReturnState.AWAITING_TAX:
        return TaxOutcome(tax_request.operation, recorded=False)
    return None


# --- The back office's tax-system queue ---------------------------------------------------------


def tax_form_lapsed_condition(*, now: dt.datetime) -> Q:
    """In SQL, ``invoices.rules.tax_request_form_has_lapsed``: the red-letter confirmation form
    still awaits the buyer and its 72 hours are over. For ordering and filtering the queue
    only; a row's own flag asks the rule (a test holds the two together)."""
    return Q(state=TaxRequestState.AWAITING_BUYER, confirm_by__lte=now)


def tax_requests_for_queue(
    queryset: QuerySet[TaxRequest], *, now: dt.datetime
) -> QuerySet[TaxRequest]:
    """The queue "To do in the tax system": each request with what its row shows, in one
    query whatever the number of rows: the invoice, its application and customer, the clerk
    who recorded it and the return waiting on it (``return_id``)."""
    returns = ReturnRequest.objects.filter(tax_request=OuterRef("pk")).order_by("-id")
    return queryset.select_related(
        "invoice__customer", "invoice__application", "recorded_by"
    ).annotate(return_id=Subquery(returns.values("pk")[:1]))


def tax_requests_lapsed_first(*, now: dt.datetime) -> OrderBy:
    """An ordering that puts the confirmation forms whose 72 hours are over first."""
    return Case(
        When(tax_form_lapsed_condition(now=now), then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    ).asc()


def tax_requests_to_do(queryset: QuerySet[TaxRequest], *, now: dt.datetime) -> QuerySet[TaxRequest]:
    """What finance must act on in the tax system now: pending requests, and confirmation
    forms whose 72 hours are over (check the platform, then record what became of them)."""
    return queryset.filter(Q(state=TaxRequestState.PENDING) | tax_form_lapsed_condition(now=now))


def invoice_document_for_customer(*, customer: Customer, invoice_id: int) -> Invoice | None:
    """A digital invoice with its file (PDF or OFD), for its owner only (R12): None for another
    customer's invoice, as for one that does not exist or has no file."""
    return Invoice.objects.filter(customer=customer, pk=invoice_id).exclude(document="").first()


@dataclass(frozen=True)
class BuyerConfirmation:
    """What a digital return awaiting the buyer shows: the red-letter confirmation form the
    buyer confirms on its e-tax platform, by when (Beijing time), and whether this tax system
    is a sandbox that lets the customer play the buyer (development and tests only)."""

    form_number: str
    confirm_by: dt.datetime
    deadline: str  # Asia/Shanghai, to the minute
    lapsed: bool  # the 72 hours are over; the tax system's answer is not recorded yet
    can_simulate: bool


def return_buyer_confirmation(
    *, return_request: ReturnRequest, now: dt.datetime | None = None
) -> BuyerConfirmation | None:
    """The buyer's part of a return awaiting it, or None (no query: the return's page fetched
    its tax-system request with it, ``return_for_customer``)."""
    rr = return_request
    tax_request = rr.tax_request
    if not return_awaits_buyer(rr) or tax_request is None or tax_request.confirm_by is None:
        return None
    return BuyerConfirmation(
        form_number=tax_request.red_letter_form_number,
        confirm_by=tax_request.confirm_by,
        deadline=local_minute(tax_request.confirm_by),
        lapsed=tax_request_form_has_lapsed(tax_request, now=now or timezone.now()),
        can_simulate=tax_backend_simulates_buyer(tax_request.backend),
    )


@dataclass(frozen=True)
class EarlierReturn:
    url: str
    label: str  # "2026-11-30: Rejected"


# Not frozen: a frozen dataclass sets each of its 17 fields through object.__setattr__, 40 %
# of the row's making; the rows are made here and only read by the template.
@dataclass(slots=True)
class InvoiceRow:
    """One row of Invoice Management, every cell already worded and formatted: the template
    only places them (issue 16, P2: no look-ups, filters or translations per row)."""

    pk: int
    applied_at: str
    title: str
    kind: str
    total: str
    breakdown: str  # safe HTML: the translated sentence around escaped figures
    code_and_number: str
    state: str
    state_label: str
    earlier: list[EarlierReturn]
    download_url: str  # empty without a file
    # What the Operation column offers: "issuer" (another issuer's invoice, R1), "return"
    # (the return that holds it), "refund" (R1: returnable) or "none".
    operation: str
    issuer_note: str
    return_url: str
    return_label: str
    refund_url: str


def earlier_returns(invoice: Invoice) -> list[ReturnRequest]:
    """The invoice's returns other than the one its Operation column links to, newest first:
    rejected, cancelled and earlier ones stay reachable from the invoice's row (R11).
    Reads what ``invoices_for_management`` prefetched (no query)."""
    holding = getattr(invoice, "return_id", None)
    return [rr for rr in getattr(invoice, "all_returns", []) if rr.pk != holding]


def _url_for_pk(name: str) -> Callable[[int], str]:
    """``reverse(name, args=[pk])`` for many pks: reversed once per script prefix, the pk put
    in by hand (a reverse costs more than a whole row otherwise)."""
    return _url_for_pk_under(name, get_script_prefix())


@cache
def _url_for_pk_under(name: str, prefix: str) -> Callable[[int], str]:
    marker = 987654321987
    pattern = reverse(name, args=[marker])
    head, tail = pattern.split(str(marker))
    return lambda pk: f"{head}{pk}{tail}"


@dataclass(frozen=True)
class _RowWords:
    """The words of Invoice Management's rows in one language (``_row_words``)."""

    breakdown: str
    dated: str
    issued_by: str
    view_return: str
    in_progress: str
    states: dict[str, str]
    invoice_states: dict[str, str]
    kinds: dict[tuple[str, str], str]


_row_words_by_language: dict[str | None, _RowWords] = {}


def _row_words() -> _RowWords:
    """The rows' sentences and labels in the active language, translated once per language
    and process (gettext's answer does not change while the process runs)."""
    language = get_language()
    words = _row_words_by_language.get(language)
    if words is None:
        words = _RowWords(
            breakdown=_("Amount %(amount)s + tax %(rate)s %(tax)s"),
            dated=_("%(date)s: %(state)s"),
            issued_by=_("Issued by %(issuer)s: contact the service provider"),
            view_return=_("View return"),
            in_progress=_("Return in progress"),
            states={value: str(label) for value, label in ReturnState.choices},
            invoice_states={
                value: str(label) for value, label in Invoice._meta.get_field("state").flatchoices
            },
            # ``Invoice.kind_label`` of each kind, keyed by the columns' values.
            kinds={(m.value, t.value): str(label) for (m, t), label in INVOICE_KIND_LABELS.items()},
        )
        _row_words_by_language[language] = words
    return words


def invoice_management_rows(invoices: Iterable[Invoice]) -> list[InvoiceRow]:
    """The rows of ``invoices_for_management``'s page, ready to show (R1, R11 as the rules
    say: ``invoice_issued_by_provider``, ``invoice_is_returnable``, ``earlier_returns``)."""
    return_url = _url_for_pk("billing:return_detail")
    refund_url = _url_for_pk("billing:refund")
    download_url = _url_for_pk("billing:invoice_download")
    # Each sentence translated once for the language, its figures put in per row.
    words = _row_words()
    breakdown, dated, issued_by = words.breakdown, words.dated, words.issued_by
    view_return, in_progress = words.view_return, words.in_progress
    states, invoice_states, kinds = words.states, words.invoice_states, words.kinds
    tz = timezone.get_current_timezone()
    rows = []
    for invoice in invoices:
        # Annotated by ``invoices_for_management``: the return that holds the invoice.
        holding_id = getattr(invoice, "return_id", None)
        holding_state = getattr(invoice, "return_state", None)
        applied = getattr(invoice, "applied_at", None) or (
            invoice.application.created_at if invoice.application else invoice.issued_at
        )
        earlier = [
            EarlierReturn(
                url=return_url(past.pk),
                label=dated
                % {
                    "date": f"{past.created_at.astimezone(tz):%Y-%m-%d}",
                    "state": states.get(past.state, past.state),
                },
            )
            for past in earlier_returns(invoice)
        ]
        if not invoice_issued_by_provider(invoice):
            operation = "issuer"
        elif holding_id:
            operation = "return"
        elif invoice_is_returnable(invoice):
            operation = "refund"
        else:
            operation = "none"
        # As strftime's "%Y-%m-%d %H:%M", without its round through the C library's strftime.
        local = applied.astimezone(tz)
        rows.append(
            InvoiceRow(
                pk=invoice.pk,
                applied_at=f"{local.year}-{local.month:02}-{local.day:02} "
                f"{local.hour:02}:{local.minute:02}",
                title=invoice.title,
                kind=kinds.get((invoice.medium, invoice.invoice_type)) or invoice.kind_label,
                total=money_as_written(invoice.total),
                # The figures escaped as blocktranslate escapes them (Django's escape is
                # html.escape; plain strings, never safe ones, so conditional_escape's check
                # and lazy wrapper are not needed).
                # SafeString itself: mark_safe's checks for a lazy string or a callable are
                # not needed for the plain string made here.
                breakdown=SafeString(
                    breakdown
                    % {
                        "amount": html.escape(money_as_written(invoice.amount)),
                        "rate": html.escape(rate_as_printed(invoice.tax_rate)),
                        "tax": html.escape(money_as_written(invoice.tax)),
                    }
                ),
                code_and_number=f"{invoice.code} {invoice.number}"
                if invoice.code
                else invoice.number,
                state=invoice.state,
                state_label=invoice_states.get(invoice.state, invoice.state),
                earlier=earlier,
                download_url=download_url(invoice.pk) if invoice.document else "",
                operation=operation,
                issuer_note=issued_by % {"issuer": invoice.issuer_name}
                if operation == "issuer"
                else "",
                return_url=return_url(holding_id) if holding_id else "",
                return_label=view_return if holding_state == ReturnState.COMPLETED else in_progress,
                refund_url=refund_url(invoice.pk),
            )
        )
    return rows
