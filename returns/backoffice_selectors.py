"""Reads of the finance back office: finding anything, the customer page, the money on the
overview, the returns export and the overdue work. Every search key is an exact or
beginning-of match through an index (a customer's name: a trigram index in PostgreSQL)."""

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum, Window
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.exports import Column, ColumnKind
from core.search import in_subquery, search_terms
from invoices.codes import InvalidCodeAndNumber, parse_code_and_number
from invoices.models import (
    INVOICE_KIND_LABELS,
    ZERO,
    Customer,
    Invoice,
    InvoiceMedium,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
    ReturnOutcome,
    TaxRequest,
    TaxRequestState,
)
from invoices.selectors import customers_matching_term
from invoices.workdays import business_tz, overdue_cutoff
from notifications.models import SmsMessage
from returns.models import (
    BLOCKING_STATES,
    OPEN_STATES,
    MailReceipt,
    ReturnEvent,
    ReturnRequest,
    ReturnState,
)
from returns.references import reference_parse

SEARCH_LIMIT = 50  # rows per kind of result; the lists behind the links hold the rest
PAGE_LIMIT = 200  # rows per section of the customer page


# --- Find anything -------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResults:
    query: str
    customers: list[Customer] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    returns: list[ReturnRequest] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.customers or self.invoices or self.returns)


_RETURN_REF = re.compile(r"#\s*(\d{1,18})")
_DIGITS = re.compile(r"\d+")
_CODE_AND_NUMBER = re.compile(r"\d{10,12}[\s\-]+\d{8}")
_MOBILE = re.compile(r"\+?\d{7,15}")
_TOKEN = re.compile(r"[0-9A-Za-z\-]{4,64}")


def search_normalise(query: str) -> str:
    """Full-width digits and letters (typed with a Chinese input method) become ASCII; spaces
    around the entry go."""
    return unicodedata.normalize("NFKC", query or "").strip()


def back_office_search(*, query: str) -> SearchResults:
    """Customers, invoices and returns matching ``query``, by its shape:

    - ``#123``: return 123; digits alone: also a return id; a return slip's reference;
    - 8 digits: a paper invoice number; 20 digits: a digital invoice number, or a 12-digit
      code + 8-digit number as a scanner reads it; a code and a number separated by a space;
    - a taxpayer ID (15, 18 or 20 characters, or its beginning), a courier tracking number
      (or its beginning), a mobile number (with or without +86);
    - anything else: part of a company name.

    Each key is one indexed query; the returns of the customers and invoices found come with
    them (newest first, ``SEARCH_LIMIT`` of each).
    """
    q = search_normalise(query)
    if not q:
        return SearchResults(query=q)
    customer_q = Q()
    invoice_q = Q()
    return_ids: set[int] = set()
    tracking = ""

    ref = _RETURN_REF.fullmatch(q)
    slip = reference_parse(q)
    if ref:
        return_ids.add(int(ref.group(1)))
    elif slip is not None:
        # A return slip's reference (R261130-7KM4QXG), typed or scanned: its unique index.
        return_ids.update(ReturnRequest.objects.filter(reference=slip).values_list("pk", flat=True))
    elif _DIGITS.fullmatch(q):
        if len(q) <= 18:
            return_ids.add(int(q))
        if len(q) >= 4:
            invoice_q |= Q(number__startswith=q)
        if len(q) in (18, 20):
            code, number = parse_code_and_number(q)
            invoice_q |= Q(code=code, number=number)
        if len(q) >= 6:
            customer_q |= Q(taxpayer_id__startswith=q)
            tracking = q
        if _MOBILE.fullmatch(q) and len(q) >= 7:
            # A Chinese mobile typed without its country code (138…), or with it (86138…).
            customer_q |= Q(mobile__startswith=f"+86{q}") | Q(mobile__startswith=f"+{q}")
    elif _CODE_AND_NUMBER.fullmatch(q):
        try:
            code, number = parse_code_and_number(q)
        except InvalidCodeAndNumber:
            pass
        else:
            invoice_q |= Q(code=code, number=number)
    elif q.startswith("+") and _MOBILE.fullmatch(q):
        customer_q |= Q(mobile__startswith=q)
    elif _TOKEN.fullmatch(q) and any(c.isdigit() for c in q):
        customer_q |= Q(taxpayer_id__startswith=q.upper())
        tracking = q
    else:
        customer_q |= Q(name__icontains=q)

    customer_ids = (
        list(Customer.objects.filter(customer_q).values_list("pk", flat=True)[:SEARCH_LIMIT])
        if customer_q
        else []
    )
    invoice_ids = (
        list(
            Invoice.objects.filter(invoice_q)
            .order_by("-issued_at", "-id")
            .values_list("pk", flat=True)[:SEARCH_LIMIT]
        )
        if invoice_q
        else []
    )
    if customer_ids:
        invoice_ids += list(
            Invoice.objects.filter(customer_id__in=customer_ids)
            .order_by("-issued_at", "-id")
            .values_list("pk", flat=True)[:SEARCH_LIMIT]
        )
    return_filters = []
    if invoice_ids:
        return_filters.append(Q(invoice_id__in=invoice_ids))
    if tracking:
        # "<> ''" lets PostgreSQL use the partial indexes (they leave out empty numbers).
        tracked = Q(tracking_number__startswith=tracking) & ~Q(tracking_number="")
        return_filters.append(tracked)
        return_filters.append(
            Q(mail_receipt_id__in=MailReceipt.objects.filter(tracked).values("pk")[:SEARCH_LIMIT])
        )
    for condition in return_filters:
        return_ids.update(
            ReturnRequest.objects.filter(condition)
            .order_by("-id")
            .values_list("pk", flat=True)[:SEARCH_LIMIT]
        )
    returns = (
        list(
            ReturnRequest.objects.filter(pk__in=return_ids)
            .select_related("invoice__customer")
            .order_by("-created_at", "-id")[:SEARCH_LIMIT]
        )
        if return_ids
        else []
    )
    # The invoices of the returns found (a return reference, a tracking number) show too.
    invoice_ids += [rr.invoice_id for rr in returns]
    invoices = (
        list(
            Invoice.objects.filter(pk__in=set(invoice_ids))
            .select_related("customer")
            .order_by("-issued_at", "-id")[:SEARCH_LIMIT]
        )
        if invoice_ids
        else []
    )
    customer_ids += [inv.customer_id for inv in invoices]
    customers = (
        list(Customer.objects.filter(pk__in=set(customer_ids)).order_by("name")[:SEARCH_LIMIT])
        if customer_ids
        else []
    )
    return SearchResults(query=q, customers=customers, invoices=invoices, returns=returns)


# --- The customer page -----------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerPage:
    customer: Customer
    balance: Decimal
    invoices: Sequence[Invoice]  # each with ``return_id`` and ``return_state`` (the holding one)
    returns: list[ReturnRequest]
    ledger: Sequence[LedgerEntry]  # newest first, each with ``balance``: the balance after it
    sms: list[SmsMessage]
    receipts: list[MailReceipt]  # paper logged for its invoices, with finance's notes
    events: list[ReturnEvent]  # the newest events of its returns (who, when, why)
    limit: int = PAGE_LIMIT


def customer_page(*, customer_id: int) -> CustomerPage | None:
    """Everything about one customer, in a fixed number of queries whatever its size: the
    newest ``PAGE_LIMIT`` rows of each kind, the ledger with its running balance (summed over
    the whole ledger, so it is right on the oldest row shown too)."""
    customer = Customer.objects.select_related("user").filter(pk=customer_id).first()
    if customer is None:
        return None
    holding = ReturnRequest.objects.filter(
        invoice=OuterRef("pk"), state__in=BLOCKING_STATES
    ).order_by("-id")
    invoices = list(
        Invoice.objects.filter(customer=customer)
        .annotate(
            return_id=Subquery(holding.values("pk")[:1]),
            return_state=Subquery(holding.values("state")[:1]),
        )
        .order_by("-issued_at", "-id")[:PAGE_LIMIT]
    )
    returns = list(
        ReturnRequest.objects.filter(invoice__customer=customer)
        .select_related("invoice", "rejection_choice")
        .order_by("-created_at", "-id")[:PAGE_LIMIT]
    )
    ledger = list(
        LedgerEntry.objects.filter(customer=customer)
        .select_related("invoice", "application", "statement")
        .annotate(balance=Window(Sum("amount"), order_by=F("id").asc()))
        .order_by("-id")[:PAGE_LIMIT]
    )
    balance = (
        LedgerEntry.objects.filter(customer=customer).aggregate(
            total=Coalesce(Sum("amount"), ZERO)
        )["total"]
        if len(ledger) == PAGE_LIMIT
        else (ledger[0].balance if ledger else ZERO)
    )
    return_ids = ReturnRequest.objects.filter(invoice__customer=customer).values("pk")
    sms_q = Q(related_return_id__in=return_ids)
    if customer.mobile:
        sms_q |= Q(to=customer.mobile)
    sms = list(SmsMessage.objects.filter(sms_q).order_by("-created_at", "-id")[:PAGE_LIMIT])
    receipts = list(
        MailReceipt.objects.filter(invoice__customer=customer)
        .select_related("invoice", "received_by")
        .order_by("-received_at", "-id")[:PAGE_LIMIT]
    )
    events = list(
        ReturnEvent.objects.filter(return_request__invoice__customer=customer)
        .select_related("actor")
        .order_by("-created_at", "-id")[:PAGE_LIMIT]
    )
    return CustomerPage(
        customer=customer,
        balance=Decimal(balance),
        invoices=invoices,
        returns=returns,
        ledger=ledger,
        sms=sms,
        receipts=receipts,
        events=events,
    )


# --- Money on the overview -------------------------------------------------------------------


@dataclass(frozen=True)
class MoneyLine:
    label: str
    count: int
    total: Decimal


@dataclass(frozen=True)
class MoneyOverview:
    awaiting_total: Decimal  # invoice totals of the open returns: to be given back
    awaiting_count: int
    awaiting_by_kind: list[MoneyLine]
    restored_total: Decimal  # ledger credits of returned invoices this month (Asia/Shanghai)
    restored_count: int
    restored_by_outcome: list[MoneyLine]
    restored_by_kind: list[MoneyLine]
    month_start: dt.datetime


def month_start(now: dt.datetime) -> dt.datetime:
    """The first instant of ``now``'s calendar month in Asia/Shanghai."""
    local = timezone.localtime(now, business_tz())
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


KINDS = [(medium, kind) for medium in InvoiceMedium for kind in InvoiceType]


def money_overview(*, now: dt.datetime | None = None) -> MoneyOverview:
    """The overview's money, in two queries: the totals of the invoices whose returns are
    open, and what was given back to the invoiceable amount this month, by outcome and by
    kind of invoice (paper or digital, special or ordinary)."""
    now = now or timezone.now()
    start = month_start(now)
    awaiting = {
        (row["medium"], row["invoice__invoice_type"]): (row["n"], row["total"])
        for row in ReturnRequest.objects.filter(state__in=OPEN_STATES)
        .order_by()
        .values("medium", "invoice__invoice_type")
        .annotate(n=Count("id"), total=Sum("invoice__total"))
    }
    restored_rows = list(
        LedgerEntry.objects.filter(kind=LedgerKind.INVOICE_RETURNED, created_at__gte=start)
        .order_by()
        .values("invoice__medium", "invoice__invoice_type", "invoice__state")
        .annotate(n=Count("id"), total=Sum("amount"))
    )
    by_kind: dict[tuple[str, str], tuple[int, Decimal]] = {}
    by_outcome: dict[str, tuple[int, Decimal]] = {}
    for row in restored_rows:
        key = (row["invoice__medium"], row["invoice__invoice_type"])
        n, total = by_kind.get(key, (0, ZERO))
        by_kind[key] = (n + row["n"], total + row["total"])
        n, total = by_outcome.get(row["invoice__state"], (0, ZERO))
        by_outcome[row["invoice__state"]] = (n + row["n"], total + row["total"])

    def lines(figures: dict[Any, tuple[int, Decimal]], labels: list[tuple[Any, Any]]) -> list:
        return [
            MoneyLine(str(label), figures.get(key, (0, ZERO))[0], figures.get(key, (0, ZERO))[1])
            for key, label in labels
        ]

    kind_labels = [(key, INVOICE_KIND_LABELS[key]) for key in KINDS]
    return MoneyOverview(
        awaiting_total=sum((total for _n, total in awaiting.values()), ZERO),
        awaiting_count=sum(n for n, _total in awaiting.values()),
        awaiting_by_kind=lines(awaiting, kind_labels),
        restored_total=sum((total for _n, total in by_kind.values()), ZERO),
        restored_count=sum(n for n, _total in by_kind.values()),
        restored_by_outcome=lines(by_outcome, list(ReturnOutcome.choices)),
        restored_by_kind=lines(by_kind, kind_labels),
        month_start=start,
    )


# --- Overdue work -------------------------------------------------------------------------------


def tax_requests_overdue(*, now: dt.datetime | None = None) -> QuerySet[TaxRequest]:
    """Requests pending in the tax system for more than 3 Chinese working days: in SQL, the
    rule ``invoices.rules.tax_request_is_overdue`` (a test holds the two together)."""
    return TaxRequest.objects.filter(
        state=TaxRequestState.PENDING, created_at__lt=overdue_cutoff(now or timezone.now())
    )


def returns_paper_overdue(*, now: dt.datetime, days: int) -> QuerySet[ReturnRequest]:
    """Paper returns still waiting for their paper ``days`` after the customer clicked Refund
    (a certified special invoice's return waits for no paper)."""
    return ReturnRequest.objects.filter(
        state=ReturnState.SUBMITTED,
        medium=InvoiceMedium.PAPER,
        certified=False,
        created_at__lte=now - dt.timedelta(days=days),
    ).order_by("created_at", "id")


# --- The returns export ----------------------------------------------------------------------

RETURN_COLUMNS = [
    Column(_("return"), ColumnKind.INTEGER, width=8),
    Column(_("submitted at"), ColumnKind.DATETIME, width=18),
    Column(_("state"), width=16),
    Column(_("age (days)"), ColumnKind.INTEGER, width=8),
    Column(_("kind"), width=30),
    Column(_("customer"), width=30),
    Column(_("taxpayer ID"), width=22),
    Column(_("invoice code"), width=14),
    Column(_("invoice number"), width=22),
    Column(_("total"), ColumnKind.MONEY),
    Column(_("amount before tax"), ColumnKind.MONEY),
    Column(_("tax"), ColumnKind.MONEY),
    Column(_("outcome"), width=16),
    Column(_("tracking number"), width=20),
    Column(_("rejection reason"), width=40),
]


def return_export_rows(
    returns: QuerySet[ReturnRequest], *, now: dt.datetime | None = None
) -> Iterator[list[Any]]:
    """One row per return of ``returns`` (the filtered list), in its order; the age of an open
    return in days (empty for a closed one). Labels are rendered now, in the active language;
    the rows are read while they stream."""
    now = now or timezone.now()
    states = {value: str(label) for value, label in ReturnState.choices}
    outcomes = {value: str(label) for value, label in ReturnOutcome.choices}
    kinds = {key: str(label) for key, label in INVOICE_KIND_LABELS.items()}
    values = returns.values_list(
        "pk",
        "created_at",
        "state",
        "medium",
        "invoice__invoice_type",
        "invoice__customer__name",
        "invoice__customer__taxpayer_id",
        "invoice__code",
        "invoice__number",
        "invoice__total",
        "invoice__amount",
        "invoice__tax",
        "outcome",
        "tracking_number",
        "rejection_reason",
    )
    return _return_rows(values.iterator(chunk_size=2000), now, states, outcomes, kinds)


def _return_rows(
    values: Iterator[tuple[Any, ...]],
    now: dt.datetime,
    states: dict[str, str],
    outcomes: dict[str, str],
    kinds: dict[Any, str],
) -> Iterator[list[Any]]:
    for row in values:
        (pk, created_at, state, medium, kind, name, taxpayer_id, code, number, *rest) = row
        total, amount, tax, outcome, tracking, rejection = rest
        yield [
            pk,
            created_at,
            states.get(state, state),
            (now - created_at).days if state in OPEN_STATES else None,
            kinds[InvoiceMedium(medium), InvoiceType(kind)],
            name,
            taxpayer_id,
            code,
            number,
            total,
            amount,
            tax,
            outcomes.get(outcome, outcome),
            tracking,
            rejection,
        ]


# --- The lists' search box -----------------------------------------------------------------


def returns_matching(returns: QuerySet[ReturnRequest], *, query: str) -> QuerySet[ReturnRequest]:
    """The returns list's search: every word must match one key of a return (its invoice's
    number or code, its customer's name, taxpayer ID or mobile, its tracking number), each key
    looked up through its own index and the ids joined as a UNION (issue 16, P5).

    The invoice's number and code are the return's copies of them: a number that one invoice
    of every customer shares finds its 2,000 returns' ids in their own index alone, not
    through every invoice that begins with it. The UNION's ids come as one array, computed
    once (``in_subquery``), that PostgreSQL reads through the primary key, where ``IN`` made
    it join the UNION with a scan of every return. The returns list pages them with
    ``KeysFirstPaginator(keys_once=True)``: the matches' ids are read once in the list's order
    (up to 10,001), giving the count and the page's 50, and only those 50 are joined."""
    matching = []
    for term in search_terms(query):
        # "<> ''" lets PostgreSQL use the partial indexes (they leave out empty codes and
        # tracking numbers).
        by_number = ReturnRequest.objects.filter(invoice_number__startswith=term)
        by_code = ReturnRequest.objects.filter(Q(invoice_code=term) & ~Q(invoice_code=""))
        by_customer = ReturnRequest.objects.filter(
            invoice__customer_id__in=customers_matching_term(term).order_by().values("pk")
        )
        by_tracking = ReturnRequest.objects.filter(
            Q(tracking_number__startswith=term) & ~Q(tracking_number="")
        )
        arms = [
            arm.order_by().values("pk") for arm in (by_number, by_code, by_customer, by_tracking)
        ]
        matching.append(arms[0].union(*arms[1:]))
    if not matching:
        return returns
    # One array for all the words (the ids every word found), not one per word: a second
    # array would be checked element by element against each row the first one found.
    ids = matching[0].intersection(*matching[1:]) if len(matching) > 1 else matching[0]
    return returns.filter(in_subquery("pk", ids, using=returns.db))
