"""Issue 12's customer actions in a real browser, from the keyboard alone, each page checked by
axe-core at 375 and 1280 px: return several invoices in one envelope, cancel an application,
apply again from a returned invoice with the wrong fields marked."""

import re

import pytest
from playwright.sync_api import expect

from invoices.models import ApplicationState, InvoiceApplication
from returns.models import ReturnEnvelope, ReturnState
from tests.browser_fixtures import log_in
from tests.factories import VALID_USCC, CustomerFactory, fund, issue_invoice, mailing_fields
from tests.returns_helpers import log_paper, submit
from tests.test_browser_a11y import PASSWORD, check_at_both_widths, tab_to

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_keyboard_return_two_invoices_in_one_envelope(page):
    customer = CustomerFactory(user__username="li.lei")
    first, second, kept = (issue_invoice(customer, amount="100.00") for _ in range(3))
    log_in(page, "li.lei", PASSWORD)
    tab_to(page, page.get_by_role("link", name="Return several invoices"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/billing/returns/several/")
    failures: list[str] = []
    check_at_both_widths(page, "return-several", "en", failures)

    for invoice in (first, second):
        box = page.get_by_role("checkbox", name=re.compile(invoice.number))
        tab_to(page, box)
        page.keyboard.press("Space")
        expect(box).to_be_checked()
    tab_to(page, page.get_by_role("textbox", name="Reason"))
    page.keyboard.type("Both titles miss our branch name")
    tab_to(page, page.get_by_role("textbox", name="Tracking number"))
    page.keyboard.type("SF1234567890")
    tab_to(page, page.get_by_role("button", name="Return the chosen invoices"))
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(r"/billing/envelopes/\d+/$"))
    expect(page.get_by_text("2 invoices returned in one envelope.")).to_be_visible()
    expect(page.get_by_role("link", name="View return")).to_have_count(2)
    check_at_both_widths(page, "envelope", "en", failures)
    assert failures == []
    envelope = ReturnEnvelope.objects.get()
    assert sorted(envelope.returns.values_list("invoice_id", "state", "tracking_number")) == [
        (first.pk, ReturnState.SUBMITTED, "SF1234567890"),
        (second.pk, ReturnState.SUBMITTED, "SF1234567890"),
    ]
    assert not kept.return_requests.exists()


def test_keyboard_cancel_an_application_and_see_the_amount_back(page):
    customer = CustomerFactory(user__username="li.lei")
    fund(customer, "500.00")
    from invoices.services import invoice_application_create

    application = invoice_application_create(
        customer_id=customer.pk,
        invoice_type="ordinary",
        title=customer.name,
        taxpayer_id=VALID_USCC,
        amount="200.00",
        medium="paper",
        **mailing_fields(),
    )
    log_in(page, "li.lei", PASSWORD)
    failures: list[str] = []
    check_at_both_widths(page, "invoices-pending-application", "en", failures)
    assert failures == []
    tab_to(page, page.get_by_role("button", name="Cancel application"))
    page.keyboard.press("Enter")
    expect(
        page.get_by_text(
            "Your application for ¥200.00 was cancelled; ¥200.00 is invoiceable again."
        )
    ).to_be_visible()
    expect(page.locator(".balance strong")).to_have_text("¥500.00")
    application.refresh_from_db()
    assert application.state == ApplicationState.CANCELLED


def test_keyboard_apply_again_from_a_returned_invoice_with_the_wrong_title_marked(
    page, finance_user
):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer, amount="300.00")
    submit(invoice, problem="title", reason="Branch name missing")
    log_paper(invoice, finance_user)  # the sandbox completes it (eager Celery)
    log_in(page, "li.lei", PASSWORD)
    page.goto(f"/billing/returns/{invoice.return_requests.get().pk}/")
    tab_to(page, page.get_by_role("link", name="Apply again with these details"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/billing/invoices/apply/\?reapply=\d+$"))
    failures: list[str] = []
    check_at_both_widths(page, "apply-again", "en", failures)
    assert failures == []
    title = page.get_by_role("textbox", name="Invoice title")
    expect(title).to_have_value(customer.name)
    expect(title).to_have_class(re.compile("marked-wrong"))
    expect(title).to_have_accessible_description(
        f"You said this was wrong on invoice {invoice.number}: check it."
    )
    tab_to(page, title)
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("Hangzhou Example Trading Co., Binjiang Branch")
    tab_to(page, page.get_by_role("button", name="Submit application"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/billing/invoices/")
    application = InvoiceApplication.objects.order_by("-id").first()
    assert (application.title, str(application.amount)) == (
        "Hangzhou Example Trading Co., Binjiang Branch",
        "300.00",
    )
