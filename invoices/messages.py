"""The audit actions of invoices, worded in the reader's language (``core.audit.messages``)."""

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.audit.messages import Params, Text, message_register
from invoices.models import NotifyBy, TaxOperation
from invoices.tax import money_as_written


def _with_money(text: Promise, *amounts: str) -> Text:
    """``text`` (a lazy message) with the parameters ``amounts`` written as money: ¥12,345.67."""

    def render(params: Params) -> str:
        return str(text) % {
            **params,
            **{name: money_as_written(params[name]) for name in amounts},
        }

    return render


def _outcome_recorded(params: Params) -> str:
    if params["operation"] == TaxOperation.VOID:
        return _("Tax-system outcome recorded for %(invoice)s: voided on %(outcome)s") % params
    return _("Tax-system outcome recorded for %(invoice)s: red-letter invoice %(outcome)s") % params


def _outcome_corrected(params: Params) -> str:
    return _("Tax-system outcome corrected (request %(serial)s): %(before)s → %(after)s") % {
        "serial": params["serial"],
        "before": ", ".join(params["before"].values()),
        "after": ", ".join(params["after"].values()),
    }


def _notifications_changed(params: Params) -> str:
    return _("Notification settings: %(notify_by)s, in %(language)s, email %(email)s") % {
        "notify_by": dict(NotifyBy.choices).get(params["notify_by"], params["notify_by"]),
        "language": dict(settings.LANGUAGES).get(params["language"], params["language"]),
        "email": params["email"] or "—",
    }


def register() -> None:
    message_register("customer.notifications_changed", _notifications_changed)
    message_register(
        "invoice.issued",
        _with_money(gettext_lazy("Invoice %(code)s %(number)s issued (%(total)s)"), "total"),
    )
    message_register(
        "application.created",
        _with_money(gettext_lazy("Applied for an invoice of %(amount)s"), "amount"),
    )
    message_register(
        "application.cancelled",
        _with_money(
            gettext_lazy("Invoice application cancelled: %(amount)s invoiceable again"), "amount"
        ),
    )
    message_register(
        "statement.settled",
        _with_money(gettext_lazy("Statement settled: %(amount)s invoiceable"), "amount"),
    )
    message_register("tax.outcome_recorded", _outcome_recorded)
    message_register("tax.outcome_corrected", _outcome_corrected)
