"""The audit actions of invoices, worded in the reader's language (``core.audit.messages``)."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.audit.messages import Params, message_register
from invoices.models import TaxOperation


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


def register() -> None:
    message_register(
        "invoice.issued", gettext_lazy("Invoice %(code)s %(number)s issued (¥%(total)s)")
    )
    message_register(
        "statement.settled", gettext_lazy("Statement settled: ¥%(amount)s invoiceable")
    )
    message_register("tax.outcome_recorded", _outcome_recorded)
    message_register("tax.outcome_corrected", _outcome_corrected)
