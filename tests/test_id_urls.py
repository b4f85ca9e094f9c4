"""``{% id_url %}`` (core.templatetags.id_urls): Django's ``{% url name id %}``, reversed once
per URL name, script prefix and language; the "Find" and customer pages link their rows with it
(issue 16, P5)."""

import pytest
from django.template import Context, Template
from django.urls import NoReverseMatch, reverse, set_script_prefix
from django.utils import translation

from returns.roles import FINANCE_STAFF
from tests.factories import staff_in_role
from tests.returns_helpers import submit

NAMES = [
    "admin:invoices_customer_page",
    "admin:invoices_invoice_change",
    "admin:returns_returnrequest_change",
]


def id_url(name: str, pk) -> str:
    return Template("{% load id_urls %}{% id_url name pk %}").render(
        Context({"name": name, "pk": pk})
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_p5_id_url_is_djangos_url_for_every_id_prefix_and_language(name, language):
    with translation.override(language):
        for prefix in ("/", "/finance/", "/"):
            set_script_prefix(prefix)
            try:
                for pk in (1, 42, "7", 10**12):
                    assert id_url(name, pk) == reverse(name, args=[pk])
                    assert id_url(name, pk).startswith(prefix)
            finally:
                set_script_prefix("/")


def test_p5_id_url_refuses_what_is_no_id_and_a_view_that_takes_none():
    with pytest.raises(ValueError, match="invalid literal for int"):
        id_url("admin:returns_returnrequest_change", "7/delete")
    with pytest.raises(NoReverseMatch):
        id_url("admin:index", 1)


@pytest.mark.django_db
def test_p5_the_find_and_customer_pages_link_each_row_where_djangos_url_tag_did(
    client, customer, invoice
):
    rr = submit(invoice)
    client.force_login(staff_in_role(FINANCE_STAFF, username="fin"))
    find = client.get(
        "/admin/returns/returnrequest/find/", {"q": customer.taxpayer_id}
    ).content.decode()
    page = client.get(reverse("admin:invoices_customer_page", args=[customer.pk])).content.decode()
    customer_link = f'href="{reverse("admin:invoices_customer_page", args=[customer.pk])}"'
    invoice_link = f'href="{reverse("admin:invoices_invoice_change", args=[invoice.pk])}"'
    return_link = f'href="{reverse("admin:returns_returnrequest_change", args=[rr.pk])}"'
    # Find: the customer, the invoice and its customer, the return and its customer.
    assert find.count(customer_link) == 3
    assert find.count(invoice_link) == 1
    assert find.count(return_link) == 1
    # The customer page: the invoice with its return, and the return.
    assert page.count(invoice_link) == 1
    assert page.count(return_link) == 2
