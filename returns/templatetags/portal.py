"""Formatting for the customer portal's pages, and the rules its templates ask."""

import re
from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django import template
from django.template import engines
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext, gettext_noop
from markupsafe import escape

from invoices.models import Invoice
from invoices.rules import invoice_is_returnable, invoice_issued_by_provider
from invoices.tax import money_as_written, rate_as_printed
from returns import selectors
from returns.rules import invoice_can_be_booked, invoice_can_be_certified

register = template.Library()


@register.filter
def percent(rate: Decimal | None) -> str:
    """A tax rate as invoices print it: 0.060 → "6%", 0.015 → "1.5%"."""
    if rate is None or rate == "":
        return ""
    return rate_as_printed(Decimal(rate))


@register.filter
def money(value: Decimal | None) -> str:
    """Yuan as people write them: ``¥12,345.67`` (``invoices.tax.money_as_written``)."""
    return money_as_written(value)


# The labels of the rows' cells (the column headings of billing/invoice_management.html) and
# of their links, translated once per language and process: gettext's answer for a language
# does not change while the process runs.
_ROW_LABELS = {
    "applied": gettext_noop("Applied at"),
    "title": gettext_noop("Title"),
    "type": gettext_noop("Type"),
    "total": gettext_noop("Total (tax included)"),
    "number": gettext_noop("Invoice code and number"),
    "status": gettext_noop("Status"),
    "operation": gettext_noop("Operation"),
    "earlier": gettext_noop("Earlier returns"),
    "download": gettext_noop("Download"),
    "refund": gettext_noop("Refund"),
}
_row_labels_by_language: dict[str | None, SimpleNamespace] = {}


def _row_labels() -> SimpleNamespace:
    """The labels as attributes (``l.applied``): Jinja2 looks an attribute up first, and a
    dict's key only after that look-up failed (an exception per label and row)."""
    language = get_language()
    labels = _row_labels_by_language.get(language)
    if labels is None:
        labels = SimpleNamespace(
            **{name: gettext(message) for name, message in _ROW_LABELS.items()}
        )
        _row_labels_by_language[language] = labels
    return labels


ROWS_TEMPLATE = "billing/_invoice_rows.html"
# A label in the rows' template: ``{{ l.applied }}``.
_LABEL = re.compile(r"\{\{ l\.(\w+) \}\}")
_rows_by_language: dict[str | None, tuple[Any, Callable[[], bool]]] = {}


def _as_literal(label: str) -> str:
    """``label`` written into the template's text: HTML-escaped as Jinja2 escapes a ``{{ }}``
    (markupsafe), its braces as character references, so that no translation opens a Jinja2
    tag or adds markup."""
    return str(escape(label)).replace("{", "&#123;").replace("}", "&#125;")


def _rows_template() -> Any:
    """The rows' template with the active language's labels written in, compiled once per
    language and process (a changed template file is read again where Jinja2 reloads them,
    in development). Each label was an attribute look-up and an escape in every row: about
    40 % of the rows' rendering (issue 16, P2)."""
    language = get_language()
    env = engines["jinja2"].env  # type: ignore[attr-defined]
    kept = _rows_by_language.get(language)
    if kept is None or (env.auto_reload and not kept[1]()):
        source, _filename, uptodate = env.loader.get_source(env, ROWS_TEMPLATE)
        labels = _row_labels()
        written = _LABEL.sub(lambda m: _as_literal(getattr(labels, m.group(1))), source)
        kept = (env.from_string(written), uptodate or (lambda: True))
        _rows_by_language[language] = kept
    return kept[0]


@register.simple_tag(takes_context=True)
def invoice_rows(context: template.Context) -> SafeString:
    """Invoice Management's rows (``invoices``: ``returns.selectors.InvoiceRow``) rendered by
    Jinja2 (``templates/jinja2/billing/_invoice_rows.html``), with the columns' translated
    labels written into the template (``_rows_template``): Django's engine spent more on these
    20 rows than the view on all its reads (issue 16, P2). Jinja2 escapes as Django does; the
    rows' safe HTML stays safe (``__html__``). ``l`` still holds the labels for any template
    expression that uses one otherwise than as ``{{ l.name }}``."""
    rows = _rows_template()
    return mark_safe(rows.render({"invoices": context["invoices"], "l": _row_labels()}))  # noqa: S308 - Jinja2 escaped it


@register.filter
def earlier_returns(invoice: Invoice) -> list:
    """``returns.selectors.earlier_returns``: the invoice's other returns (R11), no query."""
    return selectors.earlier_returns(invoice)


@register.filter
def can_be_certified(invoice: Invoice) -> bool:
    """R3 (``returns.rules``): whether the return asks "has this invoice been certified?"."""
    return invoice_can_be_certified(invoice)


@register.filter
def can_be_booked(invoice: Invoice) -> bool:
    """R3 (``returns.rules``): whether the return asks "has the buyer booked this invoice or
    confirmed its use?" (a digital invoice, 数电票) instead of the paper questions."""
    return invoice_can_be_booked(invoice)


@register.filter
def issued_by_provider(invoice: Invoice) -> bool:
    """R1 (``invoices.rules``): only the provider's own invoices are returned here."""
    return invoice_issued_by_provider(invoice)


@register.filter
def returnable(invoice: Invoice) -> bool:
    """R1 (``invoices.rules``): whether the Refund button is offered."""
    return invoice_is_returnable(invoice)
