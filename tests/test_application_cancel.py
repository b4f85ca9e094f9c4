"""Cancelling an invoice application until it is issued (issue 12): the amount it debited is
credited back once (R10's ledger stays exact), a cancelled application is never issued, and the
customer cancels from Invoice Management."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.audit.actor import Actor
from core.audit.models import AuditEntry
from invoices.exceptions import ApplicationNotCancellable, ApplicationNotPending
from invoices.models import (
    ApplicationState,
    InvoiceApplication,
    InvoiceMedium,
    LedgerEntry,
    LedgerKind,
)
from invoices.rules import invoice_application_can_be_cancelled
from invoices.selectors import invoiceable_amount
from invoices.services import invoice_application_cancel, invoice_application_create, invoice_issue
from tests.factories import VALID_USCC, CustomerFactory, fund, mailing_fields


def customer_actor(customer) -> Actor:
    return Actor.customer(customer.user, customer.pk)


pytestmark = pytest.mark.django_db


def apply_paper(customer, amount="300.00") -> InvoiceApplication:
    return invoice_application_create(
        customer_id=customer.pk,
        invoice_type="ordinary",
        title=customer.name,
        taxpayer_id=VALID_USCC,
        amount=amount,
        **mailing_fields(),
    )


def apply_digital(customer, amount="300.00") -> InvoiceApplication:
    return invoice_application_create(
        customer_id=customer.pk,
        invoice_type="ordinary",
        title=customer.name,
        taxpayer_id=VALID_USCC,
        amount=amount,
        medium=InvoiceMedium.DIGITAL,
    )


@pytest.fixture
def funded(customer):
    fund(customer, "1000.00")
    return customer


# --- the rule ---------------------------------------------------------------------------


def test_a_pending_application_people_issue_can_be_cancelled(funded):
    application = apply_paper(funded)
    assert invoice_application_can_be_cancelled(application, issued_by_tax_system=False)


def test_an_application_the_tax_system_issues_by_itself_cannot_be_cancelled(funded):
    application = apply_paper(funded)
    assert not invoice_application_can_be_cancelled(application, issued_by_tax_system=True)


def test_an_issued_application_cannot_be_cancelled(funded):
    application = apply_paper(funded)
    invoice_issue(application_id=application.pk, code="3300201130", number="00012345")
    application.refresh_from_db()
    assert not invoice_application_can_be_cancelled(application, issued_by_tax_system=False)


# --- the service --------------------------------------------------------------------------


def test_r10_cancelling_restores_the_amount_with_one_credit(funded):
    application = apply_paper(funded)
    assert invoiceable_amount(customer_id=funded.pk) == Decimal("700.00")

    invoice_application_cancel(
        application_id=application.pk, customer_id=funded.pk, actor=customer_actor(funded)
    )

    application.refresh_from_db()
    assert application.state == ApplicationState.CANCELLED
    assert invoiceable_amount(customer_id=funded.pk) == Decimal("1000.00")
    credit = LedgerEntry.objects.get(kind=LedgerKind.APPLICATION_CANCELLED)
    assert (credit.amount, credit.application_id) == (Decimal("300.00"), application.pk)


def test_cancelling_is_audited_with_the_customer_as_actor(funded):
    application = apply_paper(funded)
    invoice_application_cancel(
        application_id=application.pk, customer_id=funded.pk, actor=customer_actor(funded)
    )
    entry = AuditEntry.objects.get(action="application.cancelled")
    assert (entry.actor_kind, entry.actor_user, entry.customer_id) == (
        "customer",
        funded.user,
        funded.pk,
    )
    assert entry.object_id == str(application.pk)
    assert entry.text == "Invoice application cancelled: ¥300.00 invoiceable again"


def test_applying_from_the_portal_is_audited_with_the_customer_as_actor(client, funded):
    client.force_login(funded.user)
    response = client.post(
        reverse("billing:apply"),
        {
            "medium": "digital",
            "invoice_type": "ordinary",
            "amount": "120.00",
            "title": funded.name,
            "taxpayer_id": VALID_USCC,
        },
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="application.created")
    assert (entry.actor_kind, entry.actor_user, entry.customer_id) == (
        "customer",
        funded.user,
        funded.pk,
    )
    assert entry.text == "Applied for an invoice of ¥120.00"


def test_cancelling_twice_credits_once(funded):
    application = apply_paper(funded)
    invoice_application_cancel(
        application_id=application.pk, customer_id=funded.pk, actor=customer_actor(funded)
    )
    invoice_application_cancel(
        application_id=application.pk, customer_id=funded.pk, actor=customer_actor(funded)
    )
    assert LedgerEntry.objects.filter(kind=LedgerKind.APPLICATION_CANCELLED).count() == 1
    assert invoiceable_amount(customer_id=funded.pk) == Decimal("1000.00")


def test_an_issued_application_is_not_cancelled_and_says_why(funded):
    application = apply_paper(funded)
    invoice_issue(application_id=application.pk, code="3300201130", number="00012346")
    with pytest.raises(ApplicationNotCancellable, match="already been issued"):
        invoice_application_cancel(
            application_id=application.pk, customer_id=funded.pk, actor=customer_actor(funded)
        )
    assert not LedgerEntry.objects.filter(kind=LedgerKind.APPLICATION_CANCELLED).exists()


def test_a_digital_application_the_sandbox_issues_at_once_is_not_cancellable(funded, settings):
    settings.TAX_SYSTEM_BACKEND = "sandbox"
    application = apply_digital(funded)
    application.refresh_from_db()  # the sandbox issued it on commit (eager Celery)
    with pytest.raises(ApplicationNotCancellable):
        invoice_application_cancel(
            application_id=application.pk, customer_id=funded.pk, actor=customer_actor(funded)
        )


def test_a_digital_application_finance_issues_by_hand_can_be_cancelled(funded, settings):
    settings.TAX_SYSTEM_BACKEND = "manual"
    application = apply_digital(funded)
    invoice_application_cancel(
        application_id=application.pk, customer_id=funded.pk, actor=customer_actor(funded)
    )
    application.refresh_from_db()
    assert application.state == ApplicationState.CANCELLED


def test_another_customers_application_is_not_found(funded):
    application = apply_paper(funded)
    other = CustomerFactory()
    with pytest.raises(InvoiceApplication.DoesNotExist):
        invoice_application_cancel(
            application_id=application.pk, customer_id=other.pk, actor=customer_actor(other)
        )
    application.refresh_from_db()
    assert application.state == ApplicationState.PENDING


def test_finance_cannot_issue_a_cancelled_application(funded):
    application = apply_paper(funded)
    invoice_application_cancel(
        application_id=application.pk, customer_id=funded.pk, actor=customer_actor(funded)
    )
    with pytest.raises(ApplicationNotPending, match="cancelled"):
        invoice_issue(application_id=application.pk, code="3300201130", number="00012347")


# --- the database ----------------------------------------------------------------------------


def test_one_cancellation_credit_per_application_is_enforced_by_the_database(funded):
    application = apply_paper(funded)
    invoice_application_cancel(
        application_id=application.pk, customer_id=funded.pk, actor=customer_actor(funded)
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            customer=funded,
            kind=LedgerKind.APPLICATION_CANCELLED,
            amount=application.amount,
            application=application,
        )


def test_a_cancellation_credit_must_be_positive_and_name_its_application(funded):
    application = apply_paper(funded)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            customer=funded,
            kind=LedgerKind.APPLICATION_CANCELLED,
            amount=-application.amount,
            application=application,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            customer=funded, kind=LedgerKind.APPLICATION_CANCELLED, amount=Decimal("1.00")
        )


def test_a_cancellation_credit_of_the_application_amount_is_accepted(funded):
    application = apply_paper(funded)
    InvoiceApplication.objects.filter(pk=application.pk).update(
        state=ApplicationState.CANCELLED, cancelled_at=timezone.now()
    )
    LedgerEntry.objects.create(
        customer=funded,
        kind=LedgerKind.APPLICATION_CANCELLED,
        amount=application.amount,
        application=application,
    )
    assert invoiceable_amount(customer_id=funded.pk) == Decimal("1000.00")


def test_a_cancelled_application_must_say_when_and_only_it(funded):
    application = apply_paper(funded)
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceApplication.objects.filter(pk=application.pk).update(
            state=ApplicationState.CANCELLED
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceApplication.objects.filter(pk=application.pk).update(cancelled_at=timezone.now())


# --- check_ledger ------------------------------------------------------------------------------


def test_check_ledger_agrees_after_a_cancellation(funded, capsys):
    application = apply_paper(funded)
    invoice_application_cancel(
        application_id=application.pk, customer_id=funded.pk, actor=customer_actor(funded)
    )
    call_command("check_ledger")
    assert "OK" in capsys.readouterr().out


def test_check_ledger_reports_a_cancelled_application_without_its_credit(funded, capsys):
    application = apply_paper(funded)
    InvoiceApplication.objects.filter(pk=application.pk).update(
        state=ApplicationState.CANCELLED, cancelled_at=timezone.now()
    )
    with pytest.raises(CommandError) as failed:
        call_command("check_ledger")
    assert failed.value.returncode == 1
    assert f"customer {funded.pk}" in capsys.readouterr().err


# --- the portal --------------------------------------------------------------------------------


@pytest.fixture
def client_in(client, funded):
    client.force_login(funded.user)
    return client


def cancel_url(application) -> str:
    return reverse("billing:application_cancel", args=[application.pk])


def test_invoice_management_offers_cancel_on_a_pending_application(client_in, funded):
    application = apply_paper(funded)
    page = client_in.get("/billing/invoices/").content.decode()
    assert f'action="{cancel_url(application)}"' in page
    assert ">Cancel application</button>" in page


def test_invoice_management_offers_no_cancel_when_the_tax_system_issues_it(
    client_in, funded, settings
):
    settings.TAX_SYSTEM_BACKEND = "manual"
    application = apply_digital(funded)
    settings.TAX_SYSTEM_BACKEND = "sandbox"  # from now on, issued by the tax system itself
    page = client_in.get("/billing/invoices/").content.decode()
    assert "Applications being issued" in page
    assert cancel_url(application) not in page


def test_the_customer_cancels_and_sees_the_amount_restored(client_in, funded):
    application = apply_paper(funded)
    response = client_in.post(cancel_url(application), follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Your application for ¥300.00 was cancelled; ¥300.00 is invoiceable again." in page
    application.refresh_from_db()
    assert application.state == ApplicationState.CANCELLED


def test_a_double_click_cancels_once_and_says_so(client_in, funded):
    application = apply_paper(funded)
    client_in.post(cancel_url(application))
    page = client_in.post(cancel_url(application), follow=True).content.decode()
    assert "This application was already cancelled." in page
    assert LedgerEntry.objects.filter(kind=LedgerKind.APPLICATION_CANCELLED).count() == 1


def test_cancel_is_post_only(client_in, funded):
    application = apply_paper(funded)
    assert client_in.get(cancel_url(application)).status_code == 405


def test_another_customers_application_is_404(client, funded):
    application = apply_paper(funded)
    other = CustomerFactory()
    client.force_login(other.user)
    assert client.post(cancel_url(application)).status_code == 404
    application.refresh_from_db()
    assert application.state == ApplicationState.PENDING


def test_an_issued_application_answers_with_the_reason(client_in, funded):
    application = apply_paper(funded)
    invoice_issue(application_id=application.pk, code="3300201130", number="00012348")
    page = client_in.post(cancel_url(application), follow=True).content.decode()
    assert "already been issued" in page


def test_audit_texts_write_money_as_people_write_it_in_both_languages(customer):
    from django.utils import translation

    fund(customer, "12345.67")
    entry = AuditEntry.objects.get(action="statement.settled")
    assert entry.text == "Statement settled: ¥12,345.67 invoiceable"
    with translation.override("zh-hans"):
        assert entry.text == "账单已结清：¥12,345.67 可开票"
