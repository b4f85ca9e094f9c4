"""Invoice Management's rows (Jinja2, ``returns.templatetags.portal.invoice_rows``): the
column labels are written into the template once per language (issue 16, P2) instead of
looked up and escaped in every row. The rows read exactly as before, in both languages."""

import datetime as dt

import pytest
from django.template import Context, engines
from django.utils import translation

from returns.selectors import invoice_management_rows, invoices_for_management
from returns.templatetags import portal
from tests.factories import issue_invoice, marketplace_invoice
from tests.returns_helpers import submit

pytestmark = pytest.mark.django_db


def _rows(customer):
    return invoice_management_rows(invoices_for_management(customer=customer, status="")[0:20])


def _as_before(rows) -> str:
    """The rows as the template renders them with the labels looked up in every row."""
    template = engines["jinja2"].env.get_template("billing/_invoice_rows.html")
    return template.render({"invoices": rows, "l": portal._row_labels()})


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_rows_with_their_labels_written_in_read_as_before(customer, language):
    refundable = issue_invoice(customer)
    returning = issue_invoice(customer)
    submit(returning)
    marketplace_invoice(customer)
    with translation.override(language):
        rows = _rows(customer)
        assert {row.operation for row in rows} >= {"refund", "return", "issuer"}
        html = portal.invoice_rows(Context({"invoices": rows}))
        assert html == _as_before(rows)
        assert html == portal.invoice_rows(Context({"invoices": rows}))  # kept, the same
    assert f'data-invoice="{refundable.pk}"' in html


def test_each_language_has_its_own_labels(customer):
    issue_invoice(customer)
    with translation.override("en"):
        english = portal.invoice_rows(Context({"invoices": _rows(customer)}))
    with translation.override("zh-hans"):
        chinese = portal.invoice_rows(Context({"invoices": _rows(customer)}))
    assert 'data-label="Operation"' in english
    assert 'data-label="操作"' in chinese
    assert "操作" not in english


def test_a_label_is_escaped_and_can_open_no_template_tag(customer, monkeypatch):
    # A translation is text: HTML-escaped as Jinja2 escapes an expression, and its braces
    # written as character references, so it can neither add markup nor become Jinja2 code.
    from types import SimpleNamespace

    issue_invoice(customer)
    hostile = '<b onclick="x()">{{ "ev" ~ "aluated" }}{% if true %}</b>'
    labels = SimpleNamespace(**{name: hostile for name in portal._ROW_LABELS})
    monkeypatch.setattr(portal, "_row_labels_by_language", {"en": labels})
    monkeypatch.setattr(portal, "_rows_by_language", {})
    with translation.override("en"):
        html = portal.invoice_rows(Context({"invoices": _rows(customer)}))
    assert "<b onclick" not in html
    assert "evaluated" not in html
    assert (
        "&lt;b onclick=&#34;x()&#34;&gt;&#123;&#123; &#34;ev&#34; ~ &#34;aluated&#34; &#125;&#125;"
        "&#123;% if true %&#125;&lt;/b&gt;"
    ) in html


@pytest.mark.parametrize(
    "applied",
    [
        dt.datetime(2026, 1, 2, 3, 4, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC),  # the next year in Shanghai
        dt.datetime(2026, 6, 30, 23, 59, tzinfo=dt.UTC),
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/New_York"])
def test_the_applied_at_cell_reads_as_strftime_writes_it(customer, applied, zone):
    from django.utils import timezone

    from invoices.models import InvoiceApplication

    invoice = issue_invoice(customer)
    InvoiceApplication.objects.filter(pk=invoice.application_id).update(created_at=applied)
    with timezone.override(zone):
        (row,) = _rows(customer)
        assert row.applied_at == f"{timezone.localtime(applied):%Y-%m-%d %H:%M}"
