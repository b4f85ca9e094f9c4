"""Every write at the tax-system boundary: open a request, hand it to the backend, record the
outcome the tax system gave (R6, R7).

Recording an outcome is the one place where an invoice becomes voided or reversed and its
total goes back to the invoiceable amount: one transaction, under the invoice and customer
locks, at most once per invoice. The caller (``returns``) completes its own rows in the same
transaction.
"""

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Field, Model
from django.utils import timezone
from django.utils.translation import gettext as _

from core import sql
from core.audit.actor import Actor
from core.audit.models import AuditEntry
from core.audit.services import audit_entry_new, audit_record, object_label
from invoices.exceptions import (
    ApplicationAlreadyIssued,
    InvoiceNotReturnable,
    TaxOutcomeConflict,
    TaxOutcomeInvalid,
)
from invoices.models import (
    CONFIRMATION_WINDOW_HOURS,
    BuyerDecision,
    Customer,
    Invoice,
    InvoiceApplication,
    InvoiceMedium,
    InvoiceState,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
    RedLetterInvoice,
    ReturnOutcome,
    ReversalReason,
    TaxOperation,
    TaxOutcomeCorrection,
    TaxRequest,
    TaxRequestState,
)
from invoices.rules import (
    invoice_application_can_be_issued,
    invoice_is_returnable,
    tax_request_outcome_can_be_corrected,
    tax_request_outcome_can_be_recorded,
    void_or_reverse_decision,
)
from invoices.services import invoice_issue
from invoices.tax import breakdown_from_total, breakdown_of
from invoices.taxsystem.interface import (
    IssueSubmission,
    OriginalInvoice,
    RedLetterIssued,
    ResultStatus,
    TaxResult,
    TaxSubmission,
    get_tax_system,
)

logger = logging.getLogger(__name__)

# A red-letter information form (paper special invoices) has 16 digits; a red-letter
# confirmation form (红字发票信息确认单, digital invoices) has 20.
FORM_NUMBER_DIGITS = {InvoiceMedium.PAPER: 16, InvoiceMedium.DIGITAL: 20}
DIGITAL_NUMBER_DIGITS = 20


def _local_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(ZoneInfo(settings.BUSINESS_TIME_ZONE)).date()


def local_minute(moment: dt.datetime) -> str:
    """A moment as people here read it: Asia/Shanghai, to the minute."""
    return f"{moment.astimezone(ZoneInfo(settings.BUSINESS_TIME_ZONE)):%Y-%m-%d %H:%M}"


def _new_serial(now: dt.datetime) -> str:
    """Our request serial number: date and 16 random hex digits, upper case (24 characters)."""
    return f"RT{_local_date(now):%Y%m%d}{uuid.uuid4().hex[:14].upper()}"


def is_form_number(value: str, medium: str = InvoiceMedium.PAPER) -> bool:
    """A red-letter information form number (paper) is 16 digits; a red-letter confirmation
    form number (digital) is 20."""
    return _digits(value, FORM_NUMBER_DIGITS[InvoiceMedium(medium)])


def _digits(value: str, count: int) -> bool:
    return len(value) == count and value.isascii() and value.isdigit()


@transaction.atomic
def tax_request_open(
    *,
    invoice_id: int,
    certified: bool,
    reason_code: str,
    buyer_form_number: str = "",
    buyer_booked: bool = False,
    now: dt.datetime | None = None,
) -> TaxRequest:
    """Decide void or reverse (R6) and open the request to the tax system for it.

    A digital invoice is always reversed: through a red-letter confirmation form the buyer
    entered (``buyer_form_number``, 20 digits), or one the provider enters, which the buyer
    must confirm when it booked the invoice or confirmed its use (``buyer_booked``).

    Idempotent: while the invoice has a pending request, that request is returned unchanged
    (a re-run task, a retry after a crash resubmits the same serial). An invoice voided or
    reversed once can never be requested again.
    """
    now = now or timezone.now()
    invoice, live_id = _invoice_to_request(invoice_id)
    if not invoice_is_returnable(invoice):
        raise InvoiceNotReturnable(
            _("Invoice %(invoice)s is %(state)s and cannot be voided or reversed again.")
            % {"invoice": invoice, "state": invoice.get_state_display().lower()}
        )
    if live_id is not None:
        return TaxRequest.objects.get(pk=live_id)
    if reason_code not in ReversalReason.values:
        raise TaxOutcomeInvalid(_("Choose the reason code of the reversal."))
    if invoice.is_digital:
        return _digital_request_open(
            invoice,
            reason_code=reason_code,
            buyer_form_number=buyer_form_number,
            buyer_booked=buyer_booked,
            now=now,
        )
    special = invoice.invoice_type == InvoiceType.SPECIAL
    certified = certified and special
    decision = void_or_reverse_decision(issued_at=invoice.issued_at, certified=certified, now=now)
    if certified and not is_form_number(buyer_form_number):
        raise TaxOutcomeInvalid(
            _("A certified special invoice is reversed only against the buyer's 16-digit form.")
        )
    voiding = decision == ReturnOutcome.VOIDED
    return TaxRequest.objects.create(
        serial=_new_serial(now),
        invoice=invoice,
        operation=TaxOperation.VOID if voiding else TaxOperation.RED_LETTER,
        reason_code=reason_code,
        buyer_certified=certified,
        red_letter_form_number=buyer_form_number if certified else "",
        seller_files_form=special and not certified and not voiding,
        backend=settings.TAX_SYSTEM_BACKEND,
    )


@cache
def _invoice_to_request_sql(lock: str) -> str:
    """``_invoice_to_request``'s statement, written out (``core.sql``): the ORM built two,
    at more CPU than PostgreSQL spent on them, for every return processed (issue 16, P3)."""
    invoices, requests = Invoice._meta.db_table, TaxRequest._meta.db_table
    return (
        f"SELECT {sql.columns(Invoice, 'i')}, "  # noqa: S608 - metadata only
        f"(SELECT t.id FROM {requests} AS t WHERE t.invoice_id = i.id AND t.state = %s "
        f"ORDER BY t.id LIMIT 1) FROM {invoices} AS i WHERE i.id = %s{lock}"
    )


def _invoice_to_request(invoice_id: int) -> tuple[Invoice, int | None]:
    """The invoice, its row locked, and the id of its pending request, if it has one."""
    features = connection.features
    lock = " FOR UPDATE OF i" if features.has_select_for_update_of else ""
    with sql.prepared_cursor() as cursor:
        cursor.execute(_invoice_to_request_sql(lock), [TaxRequestState.PENDING, invoice_id])
        row = cursor.fetchone()
    if row is None:
        raise Invoice.DoesNotExist(f"No invoice {invoice_id}.")
    return sql.instance(Invoice, row[:-1]), row[-1]


def _digital_request_open(
    invoice: Invoice,
    *,
    reason_code: str,
    buyer_form_number: str,
    buyer_booked: bool,
    now: dt.datetime,
) -> TaxRequest:
    decision = void_or_reverse_decision(
        issued_at=invoice.issued_at, certified=False, now=now, digital=True
    )
    assert decision == ReturnOutcome.REVERSED  # noqa: S101 (R6: a 数电票 is never voided)
    if buyer_form_number and not is_form_number(buyer_form_number, InvoiceMedium.DIGITAL):
        raise TaxOutcomeInvalid(
            _("A red-letter confirmation form number is 20 digits: check the number.")
        )
    return TaxRequest.objects.create(
        serial=_new_serial(now),
        invoice=invoice,
        medium=InvoiceMedium.DIGITAL,
        operation=TaxOperation.RED_LETTER,
        reason_code=reason_code,
        buyer_booked=buyer_booked,
        buyer_entered_form=bool(buyer_form_number),
        red_letter_form_number=buyer_form_number,
        backend=settings.TAX_SYSTEM_BACKEND,
    )


def tax_submission(tax_request: TaxRequest) -> TaxSubmission:
    """Everything the tax system (or finance, in it) needs to act on the request."""
    invoice = tax_request.invoice
    # The taxpayer ID printed on the invoice: the application's, not today's customer record.
    application = invoice.application
    taxpayer_id = application.taxpayer_id if application else invoice.customer.taxpayer_id
    figures = breakdown_of(invoice)
    return TaxSubmission(
        serial=tax_request.serial,
        operation=tax_request.operation,
        original=OriginalInvoice(
            code=invoice.code,
            number=invoice.number,
            invoice_type=invoice.invoice_type,
            medium=invoice.medium,
            issued_on=_local_date(invoice.issued_at),
            buyer_name=invoice.title,
            buyer_taxpayer_id=taxpayer_id,
            amount=figures.amount,
            tax_rate=figures.tax_rate,
            tax=figures.tax,
            total=figures.total,
        ),
        reason_code=tax_request.reason_code,
        buyer_certified=tax_request.buyer_certified,
        red_letter_form_number=tax_request.red_letter_form_number,
        seller_files_form=tax_request.seller_files_form,
        buyer_booked=tax_request.buyer_booked,
        buyer_entered_form=tax_request.buyer_entered_form,
    )


def invoice_issue_serial(application_id: int) -> str:
    """Our serial for issuing an application's invoice: one application, one serial, so a
    re-run issue task is recognised by the tax system (idempotent)."""
    return f"IS{application_id:012d}"


def tax_invoice_issue(
    *,
    application_id: int,
    actor: Actor = Actor.system("invoices.taxsystem.services.tax_invoice_issue"),
) -> Invoice | None:
    """Ask the tax system to issue the invoice for a pending application, outside any
    transaction (it may call out), and record what it issued (``invoice_issue``).

    None when the tax system leaves it to people (the manual backend, paper invoices in the
    sandbox): finance issues it there and records it in the back office. Raises
    ``TaxSystemTransientError`` for the caller's retry policy.
    """
    application = InvoiceApplication.objects.select_related("customer").get(pk=application_id)
    if not invoice_application_can_be_issued(application):
        return Invoice.objects.filter(application=application).first()
    figures = breakdown_from_total(application.amount)
    submission = IssueSubmission(
        serial=invoice_issue_serial(application.pk),
        medium=application.medium,
        invoice_type=application.invoice_type,
        buyer_name=application.title,
        buyer_taxpayer_id=application.taxpayer_id,
        buyer_address_phone=" ".join(
            part for part in (application.registered_address, application.registered_phone) if part
        ),
        buyer_bank_account=" ".join(
            part for part in (application.bank_name, application.bank_account) if part
        ),
        seller_name=settings.PROVIDER_NAME,
        amount=figures.amount,
        tax_rate=figures.tax_rate,
        tax=figures.tax,
        total=figures.total,
    )
    result = get_tax_system().issue(submission)
    if result.status == ResultStatus.PENDING:
        return None
    if result.status != ResultStatus.DONE or result.invoice is None:
        logger.error(
            "application %s: the tax system refused to issue (%s); finance issues it by hand",
            application.pk,
            result.error,
        )
        return None
    issued = result.invoice
    try:
        return invoice_issue(
            application_id=application.pk,
            code=issued.code,
            number=issued.number,
            issued_at=issued.issued_at,
            document=issued.document,
            document_name=issued.document_name,
            actor=actor,
        )
    except ApplicationAlreadyIssued:
        return Invoice.objects.filter(application=application).first()


def tax_poll_after_seconds(*, backend_name: str | None = None) -> float | None:
    """When to ask the backend for a pending result; None when people record it by hand."""
    backend = get_tax_system(backend_name)
    return None if backend.records_by_hand else backend.poll_after_seconds


def tax_backends_answering_by_themselves(names: Iterable[str]) -> list[str]:
    """Of these backend names, those that answer on their own (nothing recorded by hand)."""
    return [name for name in set(names) if tax_poll_after_seconds(backend_name=name) is not None]


def tax_request_submit(*, tax_request_id: int) -> TaxResult:
    """Hand a pending request to the backend, outside any transaction (it may call out).

    Raises ``TaxSystemTransientError`` for the caller's retry policy. A request that is no
    longer pending is not submitted again: its recorded state is answered.
    """
    tax_request = _request_to_submit(tax_request_id)
    if tax_request.state == TaxRequestState.AWAITING_BUYER:
        # Submitted already: the form is entered. Ask what became of it instead.
        return get_tax_system(tax_request.backend).query(tax_request.serial)
    if tax_request.state != TaxRequestState.PENDING:
        return _recorded_result(tax_request)
    # The request stays with the backend it was opened under, whatever the setting says now.
    return get_tax_system(tax_request.backend).submit(tax_submission(tax_request))


_SUBMITTED_WITH: tuple[type[Model], ...] = (TaxRequest, Invoice, Customer, InvoiceApplication)


@cache
def _request_to_submit_sql() -> str:
    """``_request_to_submit``'s statement, written out (``core.sql``): building the ORM's join
    of four tables cost more CPU than running it, for every request submitted (issue 16, P3)."""
    requests, invoices, customers, applications = (m._meta.db_table for m in _SUBMITTED_WITH)
    select = ", ".join(
        sql.columns(model, alias) for model, alias in zip(_SUBMITTED_WITH, "tica", strict=True)
    )
    return (
        f"SELECT {select} FROM {requests} AS t "  # noqa: S608 - metadata only
        f"JOIN {invoices} AS i ON i.id = t.invoice_id "
        f"JOIN {customers} AS c ON c.id = i.customer_id "
        f"LEFT JOIN {applications} AS a ON a.id = i.application_id "
        "WHERE t.id = %s"
    )


def _request_to_submit(tax_request_id: int) -> TaxRequest:
    """The request with its invoice, the invoice's customer and application (what
    ``tax_submission`` reads), unlocked."""
    with sql.prepared_cursor() as cursor:
        cursor.execute(_request_to_submit_sql(), [tax_request_id])
        row = cursor.fetchone()
    if row is None:
        raise TaxRequest.DoesNotExist(f"No tax request {tax_request_id}.")
    request_values, invoice_values, customer_values, application_values = sql.split(
        row, _SUBMITTED_WITH
    )
    tax_request = sql.instance(TaxRequest, request_values)
    invoice = sql.instance(Invoice, invoice_values)
    customer = sql.instance(Customer, customer_values)
    application = (
        sql.instance(InvoiceApplication, application_values)
        if invoice.application_id is not None
        else None
    )
    Invoice.customer.field.set_cached_value(invoice, customer)
    Invoice.application.field.set_cached_value(invoice, application)
    TaxRequest.invoice.field.set_cached_value(tax_request, invoice)
    return tax_request


def tax_request_query(*, tax_request_id: int) -> TaxResult:
    tax_request = TaxRequest.objects.get(pk=tax_request_id)
    if tax_request.state not in (TaxRequestState.PENDING, TaxRequestState.AWAITING_BUYER):
        return _recorded_result(tax_request)
    return get_tax_system(tax_request.backend).query(tax_request.serial)


def _recorded_result(tax_request: TaxRequest) -> TaxResult:
    if tax_request.state == TaxRequestState.REFUSED:
        if tax_request.buyer_decision in (BuyerDecision.REFUSED, BuyerDecision.EXPIRED):
            status = (
                ResultStatus.BUYER_REFUSED
                if tax_request.buyer_decision == BuyerDecision.REFUSED
                else ResultStatus.EXPIRED
            )
            return TaxResult.buyer_declined(
                tax_request.serial, status, tax_request.red_letter_form_number
            )
        return TaxResult.refused(tax_request.serial, tax_request.error)
    if tax_request.state == TaxRequestState.AWAITING_BUYER:
        assert tax_request.confirm_by is not None  # noqa: S101 (a database constraint)
        return TaxResult.awaiting_buyer(
            tax_request.serial, tax_request.red_letter_form_number, tax_request.confirm_by
        )
    if tax_request.operation == TaxOperation.VOID:
        assert tax_request.voided_on is not None  # noqa: S101 (a database constraint)
        return TaxResult.voided(tax_request.serial, tax_request.voided_on)
    # A reversal recorded before the boundary has its red-letter invoice on the invoice only.
    red = tax_request.red_letter_invoice or tax_request.invoice.red_letter_invoice
    if red is None:
        raise TaxOutcomeConflict(_("This reversal is recorded without its red-letter invoice."))
    return TaxResult.reversed(
        tax_request.serial,
        RedLetterIssued(
            code=red.code,
            number=red.number,
            issued_on=red.issued_on,
            amount=red.amount,
            tax_rate=red.tax_rate,
            tax=red.tax,
            total=red.total,
            red_letter_form_number=red.red_letter_form_number,
        ),
    )


@cache
def _lock_sql(lock: bool) -> tuple[str, str, str]:
    """``_lock``'s three statements, written out (``core.sql``): building them through the ORM
    cost more CPU than running them, on every outcome a worker records (issue 16, P3).
    Identifiers from the models' metadata; the ids are parameters."""
    requests, invoices, customers = (m._meta.db_table for m in (TaxRequest, Invoice, Customer))
    for_update = " FOR UPDATE" if lock else ""
    return (
        f"SELECT {sql.columns(Invoice, 'i')} FROM {invoices} AS i "  # noqa: S608 - metadata
        f"WHERE i.id = (SELECT t.invoice_id FROM {requests} AS t WHERE t.id = %s){for_update}",
        f"SELECT c.id FROM {customers} AS c WHERE c.id = %s{for_update}",  # noqa: S608
        f"SELECT {sql.columns(TaxRequest, 't')} FROM {requests} AS t "  # noqa: S608
        f"WHERE t.id = %s{for_update}",
    )


def _lock(tax_request_id: int) -> tuple[TaxRequest, Invoice]:
    """Invoice, then customer, then the request: the lock order of every ledger write (the
    invoice found by a subquery, in one statement)."""
    invoice_sql, customer_sql, request_sql = _lock_sql(connection.features.has_select_for_update)
    with sql.prepared_cursor() as cursor:
        cursor.execute(invoice_sql, [tax_request_id])
        row = cursor.fetchone()
        if row is None:
            raise TaxRequest.DoesNotExist(f"No tax request {tax_request_id}.")
        invoice = sql.instance(Invoice, row)
        cursor.execute(customer_sql, [invoice.customer_id])
        cursor.execute(request_sql, [tax_request_id])
        tax_request = sql.instance(TaxRequest, cursor.fetchone())
    TaxRequest.invoice.field.set_cached_value(tax_request, invoice)
    return tax_request, invoice


@transaction.atomic
def tax_request_refuse(*, tax_request_id: int, error: str) -> TaxRequest:
    """The tax system refused the request for good: keep it, with the tax system's words."""
    tax_request, _invoice = _lock(tax_request_id)
    if tax_request.state == TaxRequestState.REFUSED:
        return tax_request
    if tax_request.state != TaxRequestState.PENDING:
        raise TaxOutcomeConflict()
    tax_request.state = TaxRequestState.REFUSED
    tax_request.error = error.strip() or _("Refused without a message.")
    tax_request.completed_at = timezone.now()
    tax_request.save(update_fields=["state", "error", "completed_at"])
    return tax_request


@transaction.atomic
def tax_request_await_buyer(
    *,
    tax_request_id: int,
    form_number: str,
    entered_at: dt.datetime | None = None,
    confirm_by: dt.datetime | None = None,
) -> TaxRequest:
    """The red-letter confirmation form is entered and awaits the buyer (digital invoices whose
    buyer booked them or confirmed their use): its number and the buyer's deadline, 72 hours
    after it was entered (the tax system's own deadline when it gives one)."""
    tax_request, _invoice = _lock(tax_request_id)
    form_number = (form_number or "").strip()
    if tax_request.state == TaxRequestState.AWAITING_BUYER:
        if form_number == tax_request.red_letter_form_number:
            return tax_request
        raise TaxOutcomeConflict()
    if tax_request.state != TaxRequestState.PENDING:
        raise TaxOutcomeConflict()
    if not (tax_request.is_digital and tax_request.buyer_booked):
        raise TaxOutcomeInvalid(_("Only a booked digital invoice's form awaits the buyer."))
    if tax_request.buyer_entered_form:
        raise TaxOutcomeInvalid(_("The buyer entered this form: the provider confirms it."))
    if not is_form_number(form_number, InvoiceMedium.DIGITAL):
        raise TaxOutcomeInvalid(
            _("A red-letter confirmation form number is 20 digits: check the number.")
        )
    now = timezone.now()
    entered_at = entered_at or now
    if entered_at > now or entered_at < tax_request.created_at - dt.timedelta(minutes=5):
        raise TaxOutcomeInvalid(
            _("The form was entered after the request was opened and not in the future.")
        )
    if (
        TaxRequest.objects.filter(red_letter_form_number=form_number, medium=InvoiceMedium.DIGITAL)
        .exclude(pk=tax_request.pk)
        .exists()
    ):
        raise TaxOutcomeInvalid(
            _("Form %(number)s is recorded for another invoice: check the number.")
            % {"number": form_number}
        )
    tax_request.red_letter_form_number = form_number
    tax_request.confirm_by = confirm_by or entered_at + dt.timedelta(
        hours=CONFIRMATION_WINDOW_HOURS
    )
    tax_request.state = TaxRequestState.AWAITING_BUYER
    tax_request.save(update_fields=["red_letter_form_number", "confirm_by", "state"])
    return tax_request


def tax_backend_simulates_buyer(backend_name: str) -> bool:
    """The backend is a simulation that can play the buyer (the sandbox, in development)."""
    return get_tax_system(backend_name).simulates_buyer


def tax_simulate_buyer_decision(*, tax_request_id: int, confirmed: bool) -> None:
    """Development only: play the buyer on the sandbox's e-tax platform (confirm or refuse)."""
    tax_request = TaxRequest.objects.get(pk=tax_request_id)
    if tax_request.state != TaxRequestState.AWAITING_BUYER:
        raise TaxOutcomeConflict(_("This form is not awaiting the buyer."))
    backend = get_tax_system(tax_request.backend)
    if not backend.simulates_buyer:
        raise TaxOutcomeConflict(_("Only the sandbox tax system can act as the buyer."))
    backend.simulate_buyer_decision(tax_request.serial, confirmed=confirmed)


@transaction.atomic
def tax_request_buyer_declined(*, tax_request_id: int, expired: bool) -> TaxRequest:
    """The buyer refused the red-letter confirmation form, or let its 72 hours pass: nothing
    was issued, the invoice stays valid, and the request ends (a new return opens a new one)."""
    tax_request, _invoice = _lock(tax_request_id)
    decision = BuyerDecision.EXPIRED if expired else BuyerDecision.REFUSED
    if tax_request.state == TaxRequestState.REFUSED and tax_request.buyer_decision == decision:
        return tax_request
    if tax_request.state != TaxRequestState.AWAITING_BUYER:
        raise TaxOutcomeConflict(_("Only a form awaiting the buyer can be refused or lapse."))
    now = timezone.now()
    if expired and tax_request.confirm_by is not None and now < tax_request.confirm_by:
        raise TaxOutcomeInvalid(
            _("The form can be confirmed until %(deadline)s: it has not lapsed yet.")
            % {"deadline": local_minute(tax_request.confirm_by)}
        )
    tax_request.state = TaxRequestState.REFUSED
    tax_request.buyer_decision = decision
    tax_request.error = f"Red-letter confirmation form {tax_request.red_letter_form_number}: " + (
        "not confirmed by the buyer within 72 hours" if expired else "refused by the buyer"
    )
    tax_request.completed_at = now
    tax_request.save(update_fields=["state", "buyer_decision", "error", "completed_at"])
    return tax_request


@transaction.atomic
def tax_outcome_record(*, tax_request_id: int, result: TaxResult, actor: Actor) -> TaxRequest:
    """Record what the tax system did (R6) and credit the invoiceable amount once (R7).

    Validated against the request and the original: a void on a date R6 allows; a red-letter
    invoice with a well-formed, unused code and number, a date on or after the original's and
    not in the future, and exactly the original's amount, tax and total negated. Recording the
    same outcome twice is a no-op; a different one is refused (correct it with an audited
    correction instead).
    """
    tax_request, invoice = _lock(tax_request_id)
    if result.status != ResultStatus.DONE:
        raise TaxOutcomeInvalid(_("Only a completed outcome can be recorded."))
    if tax_request.state == TaxRequestState.DONE:
        if _recorded_result(tax_request) == _with_serial(result, tax_request.serial):
            return tax_request
        raise TaxOutcomeConflict()
    if not tax_request_outcome_can_be_recorded(tax_request):
        raise TaxOutcomeConflict(_("The tax system refused this request; retry the return."))
    now = timezone.now()
    today = _local_date(now)
    issued_on = _local_date(invoice.issued_at)
    if tax_request.operation == TaxOperation.VOID:
        if invoice.is_digital:  # R6; the database refuses it too
            raise TaxOutcomeInvalid(_("A digital invoice is never voided, only reversed."))
        _check_void(result, issued_on=issued_on, today=today, certified=tax_request.buyer_certified)
        assert result.voided_on is not None  # noqa: S101 (checked just above)
        invoice.state = InvoiceState.VOIDED
        issued: RedLetterInvoice | None = None
        tax_request.voided_on = result.voided_on
    else:
        red = _check_red_letter(result, tax_request=tax_request, invoice=invoice, today=today)
        invoice.state = InvoiceState.REVERSED
        issued = _red_letter_insert(red, invoice=invoice, tax_request=tax_request)
        # The form it was issued against, on the request too (the one finance entered now).
        tax_request.red_letter_form_number = red.red_letter_form_number
    invoice.state_changed_at = now
    if tax_request.state == TaxRequestState.AWAITING_BUYER:
        tax_request.buyer_decision = BuyerDecision.CONFIRMED  # confirming issues it (确认即开票)
    tax_request.state = TaxRequestState.DONE
    tax_request.completed_at = now
    tax_request.recorded_by = actor.user
    credit = LedgerEntry(
        customer_id=invoice.customer_id,
        kind=LedgerKind.INVOICE_RETURNED,
        amount=invoice.total,
        invoice=invoice,
    )
    audit: dict[str, Any] = dict(
        actor=actor,
        action="tax.outcome_recorded",
        customer_id=invoice.customer_id,
        params={
            "serial": tax_request.serial,
            "invoice": invoice.number,
            "operation": tax_request.operation,
            "outcome": issued.number if issued is not None else f"{tax_request.voided_on:%Y-%m-%d}",
            "credited": invoice.total,
        },
    )
    _outcome_write(invoice, tax_request, credit, audit)
    return tax_request


# What recording an outcome changes on the invoice and on its request.
_OUTCOME_INVOICE_FIELDS = ("state", "state_changed_at")
_OUTCOME_REQUEST_FIELDS = (
    "state",
    "completed_at",
    "recorded_by",
    "voided_on",
    "buyer_decision",
    "red_letter_form_number",
)


def _outcome_write(
    invoice: Invoice, tax_request: TaxRequest, credit: LedgerEntry, audit: dict[str, Any]
) -> AuditEntry:
    """The outcome's four writes, in the order the ORM makes them: the invoice voided or
    reversed, its request done, the credit (R7) and the audit row (``audit``: the arguments of
    ``audit_record``), stamped in that order. On PostgreSQL one statement (``_outcome_sql``):
    built by the ORM they cost more CPU than PostgreSQL spent on them, on every return
    completed (issue 16, P3). Both rows are locked (``_lock``); an update that finds nothing
    is refused as ``save(update_fields=…)`` refuses it."""
    if not sql.writes_in_with():  # SQLite (development): the ORM's writes, one by one
        invoice.save(update_fields=_OUTCOME_INVOICE_FIELDS)
        tax_request.save(update_fields=_OUTCOME_REQUEST_FIELDS)
        credit.save(force_insert=True)
        return audit_record(obj=tax_request, **audit)
    invoice_fields, request_fields = _outcome_fields()
    values = [*sql.update_values(invoice, invoice_fields), invoice.pk]
    values += [*sql.update_values(tax_request, request_fields), tax_request.pk]
    values += sql.insert_values(credit)
    entry = audit_entry_new(
        object_type=object_label(tax_request), object_id=tax_request.pk, **audit
    )
    values += sql.insert_values(entry)
    with sql.prepared_cursor() as cursor:
        cursor.execute(_outcome_sql(), values)
        row = cursor.fetchone()
    if row is None:
        raise DatabaseError("Save with update_fields did not affect any rows.")
    sql.saved(credit, row[0])
    return sql.saved(entry, row[1])


def _outcome_fields() -> tuple[tuple[Field, ...], tuple[Field, ...]]:
    return (
        sql.update_fields(Invoice, _OUTCOME_INVOICE_FIELDS),
        sql.update_fields(TaxRequest, _OUTCOME_REQUEST_FIELDS),
    )


@cache
def _outcome_sql() -> str:
    """``_outcome_write``'s statement: identifiers from the models' metadata, every value a
    parameter; no row when the invoice or the request is gone."""
    invoice_fields, request_fields = _outcome_fields()
    return (
        f"WITH i AS (UPDATE {Invoice._meta.db_table} "  # noqa: S608 - metadata only
        f"SET {sql.update_set(invoice_fields)} WHERE id = %s RETURNING id), "
        f"t AS (UPDATE {TaxRequest._meta.db_table} "
        f"SET {sql.update_set(request_fields)} WHERE id = %s RETURNING id), "
        f"l AS (INSERT INTO {LedgerEntry._meta.db_table} ({sql.insert_columns(LedgerEntry)}) "
        f"SELECT {sql.insert_placeholders(LedgerEntry)} FROM i, t RETURNING id), "
        f"a AS (INSERT INTO {AuditEntry._meta.db_table} ({sql.insert_columns(AuditEntry)}) "
        f"SELECT {sql.insert_placeholders(AuditEntry)} FROM i, t RETURNING id) "
        "SELECT l.id, a.id FROM l, a"
    )


def _red_letter_insert(
    red: RedLetterIssued, *, invoice: Invoice, tax_request: TaxRequest
) -> RedLetterInvoice:
    """The red-letter invoice as the tax system printed it; a code and number already current
    on another red-letter invoice is refused in words (the database's unique constraint)."""
    try:
        with transaction.atomic():
            red_letter = RedLetterInvoice.objects.create(
                original=invoice,
                tax_request=tax_request,
                medium=invoice.medium,
                code=red.code,
                number=red.number,
                amount=red.amount,
                tax_rate=red.tax_rate,
                tax=red.tax,
                total=red.total,
                red_letter_form_number=red.red_letter_form_number,
                issued_on=red.issued_on,
            )
        tax_request._recorded_red_letter = red_letter  # the current one now
        return red_letter
    except IntegrityError as exc:
        raise TaxOutcomeInvalid(
            _("Invoice %(code)s %(number)s is already recorded: check the number.")
            % {"code": red.code, "number": red.number}
        ) from exc


def _with_serial(result: TaxResult, serial: str) -> TaxResult:
    return TaxResult(
        serial=serial,
        status=result.status,
        voided_on=result.voided_on,
        red_letter=result.red_letter,
        error=result.error,
    )


def _check_void(result: TaxResult, *, issued_on: dt.date, today: dt.date, certified: bool) -> None:
    if result.voided_on is None or result.red_letter is not None:
        raise TaxOutcomeInvalid(_("This request is a void: enter the date it was voided."))
    on = result.voided_on
    if certified or (on.year, on.month) != (issued_on.year, issued_on.month):
        raise TaxOutcomeInvalid(
            _(
                "A paper invoice is voided only in its month of issue (%(month)s) and before "
                "certification: if the tax system refused the void, it needs a red-letter "
                "invoice."
            )
            % {"month": f"{issued_on:%Y-%m}"}
        )
    if on < issued_on or on > today:
        raise TaxOutcomeInvalid(
            _("The void date must be between the issue date %(issued)s and today.")
            % {"issued": issued_on.isoformat()}
        )


def _check_confirmation_form(form_number: str, *, tax_request: TaxRequest) -> str:
    """A digital reversal carries its red-letter confirmation form: the one on the request
    (the buyer's, or the provider's awaiting the buyer), or the one finance entered now."""
    if tax_request.red_letter_form_number:
        if form_number and form_number != tax_request.red_letter_form_number:
            raise TaxOutcomeInvalid(
                _("The red-letter confirmation form is %(number)s.")
                % {"number": tax_request.red_letter_form_number}
            )
        return tax_request.red_letter_form_number
    if tax_request.buyer_booked:
        raise TaxOutcomeInvalid(
            _(
                "The buyer booked this invoice: its red-letter confirmation form must be "
                "confirmed by the buyer first. Record the form when it is entered."
            )
        )
    if not is_form_number(form_number, InvoiceMedium.DIGITAL):
        raise TaxOutcomeInvalid(
            _("Enter the 20-digit number of the red-letter confirmation form entered.")
        )
    return form_number


def _check_red_letter(
    result: TaxResult, *, tax_request: TaxRequest, invoice: Invoice, today: dt.date
) -> RedLetterIssued:
    red = result.red_letter
    if red is None or result.voided_on is not None:
        raise TaxOutcomeInvalid(_("This request is a red-letter invoice: enter its numbers."))
    code, number = red.code.strip(), red.number.strip()
    if invoice.is_digital:
        if code:
            raise TaxOutcomeInvalid(_("A digital red-letter invoice has no code: leave it empty."))
        if not _digits(number, DIGITAL_NUMBER_DIGITS):
            raise TaxOutcomeInvalid(_("A digital red-letter invoice number is 20 digits."))
    else:
        if not (code.isascii() and code.isdigit() and len(code) in (10, 12)):
            raise TaxOutcomeInvalid(_("The red-letter invoice code is 10 or 12 digits."))
        if not _digits(number, 8):
            raise TaxOutcomeInvalid(_("The red-letter invoice number is 8 digits."))
    if Invoice.objects.filter(code=code, number=number).exists():
        raise TaxOutcomeInvalid(
            _("%(code)s %(number)s is a blue invoice already recorded: check the number.")
            % {"code": code, "number": number}
        )
    issued_on = _local_date(invoice.issued_at)
    if red.issued_on < issued_on or red.issued_on > today:
        raise TaxOutcomeInvalid(
            _("The red-letter invoice's date must be between %(issued)s and today.")
            % {"issued": issued_on.isoformat()}
        )
    expected = breakdown_of(invoice).negated()
    printed = (red.amount, red.tax_rate, red.tax, red.total)
    if printed != (expected.amount, expected.tax_rate, expected.tax, expected.total):
        raise TaxOutcomeInvalid(
            _(
                "A full red-letter invoice prints the original's figures negated: amount "
                "%(amount)s, tax rate %(rate)s, tax %(tax)s, total %(total)s."
            )
            % {
                "amount": expected.amount,
                "rate": f"{expected.tax_rate:.0%}",
                "tax": expected.tax,
                "total": expected.total,
            }
        )
    form_number = red.red_letter_form_number.strip()
    if invoice.is_digital:
        form_number = _check_confirmation_form(form_number, tax_request=tax_request)
    elif tax_request.buyer_certified:
        if form_number and form_number != tax_request.red_letter_form_number:
            raise TaxOutcomeInvalid(
                _("The buyer's red-letter information form is %(number)s.")
                % {"number": tax_request.red_letter_form_number}
            )
        form_number = tax_request.red_letter_form_number
    elif tax_request.seller_files_form and not is_form_number(form_number):
        raise TaxOutcomeInvalid(
            _("Enter the 16-digit number of the red-letter information form the seller filed.")
        )
    elif not tax_request.seller_files_form and form_number:
        raise TaxOutcomeInvalid(_("An ordinary invoice is reversed without a form number."))
    return RedLetterIssued(
        code=code,
        number=number,
        issued_on=red.issued_on,
        amount=red.amount,
        tax_rate=red.tax_rate,
        tax=red.tax,
        total=red.total,
        red_letter_form_number=form_number,
    )


@transaction.atomic
def tax_outcome_correct(
    *,
    tax_request_id: int,
    actor: Actor,
    reason: str,
    code: str = "",
    number: str = "",
    issued_on: dt.date | None = None,
    voided_on: dt.date | None = None,
) -> TaxOutcomeCorrection:
    """Correct a recorded outcome that was mistyped: never an edit in place.

    A red-letter invoice is superseded by a new row with the corrected code, number or date
    (its figures cannot change: they are the original's negated); a void gets its corrected
    date. Each correction is a row saying who, when, why, before and after. Validated like the
    recording itself; the ledger is untouched (the credited total does not change).
    """
    reason = (reason or "").strip()
    if not reason:
        raise TaxOutcomeInvalid(_("Say why the outcome is corrected: it stays in the audit trail."))
    tax_request, invoice = _lock(tax_request_id)
    if not tax_request_outcome_can_be_corrected(tax_request):
        raise TaxOutcomeConflict(_("Only a recorded outcome can be corrected."))
    today = _local_date(timezone.now())
    if tax_request.operation == TaxOperation.VOID:
        if voided_on is None:
            raise TaxOutcomeInvalid(_("This request is a void: enter the date it was voided."))
        _check_void(
            TaxResult.voided(tax_request.serial, voided_on),
            issued_on=_local_date(invoice.issued_at),
            today=today,
            certified=tax_request.buyer_certified,
        )
        before = {"voided_on": f"{tax_request.voided_on:%Y-%m-%d}"}
        after = {"voided_on": voided_on.isoformat()}
        if before == after:
            raise TaxOutcomeInvalid(_("The correction changes nothing."))
        tax_request.voided_on = voided_on
        tax_request.save(update_fields=["voided_on"])
    else:
        old = tax_request.red_letter_invoice
        assert old is not None  # noqa: S101 (a done red-letter request has its invoice)
        new_code, new_number = (code or old.code).strip(), (number or old.number).strip()
        corrected = RedLetterIssued(
            code=new_code,
            number=new_number,
            issued_on=issued_on or old.issued_on,
            amount=old.amount,
            tax_rate=old.tax_rate,
            tax=old.tax,
            total=old.total,
            red_letter_form_number=old.red_letter_form_number,
        )
        before = _red_letter_fields(old.code, old.number, old.issued_on)
        after = _red_letter_fields(corrected.code, corrected.number, corrected.issued_on)
        if before == after:
            raise TaxOutcomeInvalid(_("The correction changes nothing."))
        checked = _check_red_letter(
            TaxResult.reversed(tax_request.serial, corrected),
            tax_request=tax_request,
            invoice=invoice,
            today=today,
        )
        old.superseded_at = timezone.now()
        old.save(update_fields=["superseded_at"])
        _red_letter_insert(checked, invoice=invoice, tax_request=tax_request)
    correction = TaxOutcomeCorrection.objects.create(
        tax_request=tax_request,
        before=before,
        after=after,
        reason=reason[:500],
        corrected_by=actor.person,
    )
    audit_record(
        actor=actor,
        action="tax.outcome_corrected",
        obj=tax_request,
        customer_id=invoice.customer_id,
        params={"serial": tax_request.serial, "before": before, "after": after},
        reason=correction.reason,
    )
    return correction


def _red_letter_fields(code: str, number: str, issued_on: dt.date) -> dict[str, str]:
    return {"code": code, "number": number, "issued_on": issued_on.isoformat()}
