"""Management commands of the public contract: demo_data and check_ledger."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from invoices.models import (
    Customer,
    Invoice,
    InvoiceApplication,
    InvoiceState,
    Issuer,
    LedgerEntry,
    LedgerKind,
)
from returns.models import ReturnRequest
from tests.factories import VALID_USCC, fund, mailing_fields

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def test_demo_data_creates_the_three_log_ins_and_returnable_invoices_of_both_types():
    output = run("demo_data")
    for username in ("demo-customer", "demo-finance", "demo-reviewer"):
        assert username in output
    customer = Customer.objects.get(user__username="demo-customer")
    provider = customer.invoices.filter(issuer=Issuer.PROVIDER, state=InvoiceState.ISSUED)
    assert set(provider.values_list("invoice_type", flat=True)) == {"special", "ordinary"}
    assert customer.invoices.filter(issuer=Issuer.MARKETPLACE).count() == 1
    months = {i.issued_at.month for i in provider}
    assert len(months) >= 2  # this month and earlier months


def test_demo_data_is_idempotent():
    run("demo_data")
    counts = (Invoice.objects.count(), LedgerEntry.objects.count(), Customer.objects.count())
    run("demo_data")
    assert (
        Invoice.objects.count(),
        LedgerEntry.objects.count(),
        Customer.objects.count(),
    ) == counts


def test_check_ledger_passes_after_demo_data():
    run("demo_data")
    assert "OK" in run("check_ledger")


def test_check_ledger_passes_after_a_completed_return(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    from tests.returns_helpers import log_paper, submit

    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    assert ReturnRequest.objects.get().state == "completed"
    assert "OK" in run("check_ledger")


def test_check_ledger_fails_when_a_voided_invoice_has_no_credit(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(state=InvoiceState.VOIDED)
    with pytest.raises(CommandError) as excinfo:
        run("check_ledger")
    assert excinfo.value.returncode == 1


def test_check_ledger_reports_the_disagreement(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(state=InvoiceState.VOIDED)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_ledger", stdout=StringIO(), stderr=err)
    report = err.getvalue()
    assert f"invoice {invoice.code} {invoice.number} is voided but has 0 returned credits" in report
    assert "ledger says" in report  # the balance check disagrees too


def test_check_ledger_detects_a_balance_that_dipped_below_zero_even_if_covered_later(customer):
    # An application that bypassed the service (no lock, no balance check) overdraws...
    application = InvoiceApplication.objects.create(
        customer=customer,
        invoice_type="ordinary",
        title="x",
        amount="50.00",
        taxpayer_id=VALID_USCC,
        **mailing_fields(),
    )
    LedgerEntry.objects.create(
        customer=customer, kind=LedgerKind.INVOICE_APPLIED, amount="-50.00", application=application
    )
    # ...and a later statement covers it, so the final balance (50.00) looks fine.
    fund(customer, "100.00")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_ledger", stdout=StringIO(), stderr=err)
    assert f"customer {customer.pk}: invoiceable amount went negative (-50.00)" in err.getvalue()


def test_demo_data_puts_the_staff_in_their_roles_and_fills_the_back_office():
    from returns.models import FormReviewState, RedLetterForm, ReturnState
    from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF

    run("demo_data")
    run("demo_data")
    finance = Customer._meta.apps.get_model("auth", "User").objects.get(username="demo-finance")
    reviewer = Customer._meta.apps.get_model("auth", "User").objects.get(username="demo-reviewer")
    assert list(finance.groups.values_list("name", flat=True)) == [FINANCE_STAFF]
    assert list(reviewer.groups.values_list("name", flat=True)) == [ADMIN_REVIEWERS]
    assert finance.has_perm("returns.log_mailreceipt")
    assert reviewer.has_perm("returns.review_redletterform")
    states = sorted(ReturnRequest.objects.values_list("state", flat=True))
    assert states == [ReturnState.RECEIVED, ReturnState.SUBMITTED]
    assert RedLetterForm.objects.get().review_state == FormReviewState.PENDING
    assert InvoiceApplication.objects.filter(state="pending").count() == 1
    assert "OK" in run("check_ledger")
