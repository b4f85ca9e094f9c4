"""The invoice rules, each stated once: pure functions over model instances, no queries.

Services enforce them (raising a domain error), views and admin ask them before offering an
action, templates reach them through the ``returnable`` filters (``returns.templatetags``).
"""

import datetime as dt

from django.utils.translation import gettext as _

from invoices.models import (
    ApplicationState,
    Customer,
    Invoice,
    InvoiceApplication,
    InvoiceState,
    Issuer,
    NotifyBy,
    ReturnOutcome,
    TaxRequest,
    TaxRequestState,
)
from invoices.workdays import business_tz, tax_task_due_date


def invoice_issued_by_provider(invoice: Invoice) -> bool:
    """R1, first half: only the provider's own invoices are returned here; an invoice another
    issuer wrote is returned to that issuer."""
    return invoice.issuer == Issuer.PROVIDER


def invoice_is_returnable(invoice: Invoice) -> bool:
    """R1: the provider's invoice, still issued (not voided, reversed or otherwise closed)."""
    return invoice_issued_by_provider(invoice) and invoice.state == InvoiceState.ISSUED


def invoice_return_refusal(invoice: Invoice) -> str | None:
    """Why this invoice cannot be returned now (R1), in words for the customer, or None."""
    if not invoice_issued_by_provider(invoice):
        return _("Issued by %(issuer)s: contact the service provider.") % {
            "issuer": invoice.issuer_name
        }
    if not invoice_is_returnable(invoice):
        return _("This invoice is %(state)s and cannot be returned.") % {
            "state": invoice.get_state_display().lower()
        }
    return None


def void_or_reverse_decision(
    *, issued_at: dt.datetime, certified: bool, now: dt.datetime, digital: bool = False
) -> ReturnOutcome:
    """R6: a digital invoice (数电票) is always reversed. A paper one is voided when issued in
    the current calendar month (Asia/Shanghai) and not certified; otherwise reversed with a
    red-letter invoice."""
    if digital:
        return ReturnOutcome.REVERSED
    tz = business_tz()
    issued_local, now_local = issued_at.astimezone(tz), now.astimezone(tz)
    same_month = (issued_local.year, issued_local.month) == (now_local.year, now_local.month)
    return ReturnOutcome.VOIDED if same_month and not certified else ReturnOutcome.REVERSED


def invoice_application_can_be_issued(application: InvoiceApplication) -> bool:
    """An application gets one invoice: only a pending one can be issued."""
    return application.state == ApplicationState.PENDING


def invoice_application_can_be_cancelled(
    application: InvoiceApplication, *, issued_by_tax_system: bool
) -> bool:
    """The customer may cancel an application until it is issued, as long as people issue it
    (finance prints a paper invoice, or keys a digital one into the tax system): one the tax
    system issues by itself is already on its way there, so it is returned once issued."""
    return application.state == ApplicationState.PENDING and not issued_by_tax_system


def tax_request_outcome_can_be_recorded(tax_request: TaxRequest) -> bool:
    """Only a request the tax system has not answered yet takes an outcome (a digital one's
    form may be awaiting the buyer: its confirmation issues the red-letter invoice)."""
    return tax_request.state in (TaxRequestState.PENDING, TaxRequestState.AWAITING_BUYER)


def tax_request_awaits_buyer(tax_request: TaxRequest) -> bool:
    """A digital reversal whose red-letter confirmation form awaits the buyer's decision."""
    return tax_request.state == TaxRequestState.AWAITING_BUYER


def tax_request_awaits_confirmation_form(tax_request: TaxRequest) -> bool:
    """A digital reversal the buyer booked (or confirmed the use of): the provider enters the
    red-letter confirmation form first, and the buyer must confirm it within 72 hours. Until
    the form is recorded no red-letter invoice can be (a form the buyer entered itself is
    already on the request: the provider confirms it and issues at once)."""
    return (
        tax_request.state == TaxRequestState.PENDING
        and tax_request.is_digital
        and tax_request.buyer_booked
        and not tax_request.red_letter_form_number
    )


def tax_request_form_has_lapsed(tax_request: TaxRequest, *, now: dt.datetime) -> bool:
    """The 72 hours are over and the buyer's decision is not recorded yet: finance checks the
    platform (a last-minute confirmation issued the red-letter invoice) and records it."""
    return (
        tax_request_awaits_buyer(tax_request)
        and tax_request.confirm_by is not None
        and now >= tax_request.confirm_by
    )


def tax_request_outcome_can_be_corrected(tax_request: TaxRequest) -> bool:
    """Only a recorded outcome can be corrected (with an audited reason)."""
    return tax_request.state == TaxRequestState.DONE


def tax_request_is_overdue(tax_request: TaxRequest, *, now: dt.datetime) -> bool:
    """A request still pending in the tax system after 3 Chinese working days (the day it was
    made not counted): flagged to finance in the queue and on the overview."""
    requested_on = tax_request.created_at.astimezone(business_tz()).date()
    return tax_request.state == TaxRequestState.PENDING and now.astimezone(
        business_tz()
    ).date() > tax_task_due_date(requested_on)


def customer_notify_channels(customer: Customer, *, email_possible: bool) -> frozenset[str]:
    """How the customer is told of a return's events: what they chose, among the channels
    they have an address for (a mobile; an email address, where mail can go out at all:
    ``email_possible``); not chosen, or chosen with no address for it, every channel they have
    an address for. Empty when they have none."""
    available = set()
    if customer.mobile:
        available.add(NotifyBy.SMS.value)
    if customer.user.email and email_possible:
        available.add(NotifyBy.EMAIL.value)
    chosen = {
        NotifyBy.SMS: {NotifyBy.SMS.value},
        NotifyBy.EMAIL: {NotifyBy.EMAIL.value},
        NotifyBy.BOTH: {NotifyBy.SMS.value, NotifyBy.EMAIL.value},
    }.get(customer.notify_by, available)  # type: ignore[call-overload]
    return frozenset(chosen & available or available)
