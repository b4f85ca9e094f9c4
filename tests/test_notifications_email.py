"""Email beside SMS, as the customer chooses (SMS, email or both); once per event."""

import smtplib

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from core.audit.actor import Actor, ActorKind
from core.audit.models import AuditEntry
from invoices.models import Customer, InvoiceType, NotifyBy
from invoices.rules import customer_notify_channels
from notifications.models import EmailNotification, EmailStatus, SmsMessage, SmsPurpose
from notifications.services import email_notification_queue, email_notification_send
from notifications.tasks import email_send_task
from returns.services import return_request_reject
from tests.factories import CustomerFactory, UserFactory, issue_invoice
from tests.returns_helpers import log_paper, submit

pytestmark = pytest.mark.django_db

ADDRESS = "finance@example.cn"


@pytest.fixture(autouse=True)
def email_possible(settings):
    settings.NOTIFICATION_EMAIL_ENABLED = True


def customer_with(*, notify_by="", mobile="+8613800138000", email=ADDRESS, language="en"):
    return CustomerFactory(
        notify_by=notify_by,
        mobile=mobile,
        language=language,
        user=UserFactory(email=email),
    )


def complete_a_return(customer, callbacks):
    """A paper ordinary invoice of this month, returned and voided: one "completed" event."""
    invoice = issue_invoice(
        customer, invoice_type=InvoiceType.ORDINARY, amount="12345.67", issued_at=timezone.now()
    )
    submit(invoice)
    with callbacks(execute=True):
        log_paper(invoice, UserFactory(is_staff=True))
    return invoice


def told(customer) -> tuple[int, int]:
    """(SMS, emails) the customer got."""
    sms = SmsMessage.objects.filter(to=customer.mobile).count() if customer.mobile else 0
    emails = EmailNotification.objects.filter(to=customer.user.email).count()
    return sms, emails


# --- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notify_by", "mobile", "email", "expected"),
    [
        ("", "+8613800138000", "", {"sms"}),  # not chosen: what they have an address for
        ("", "", ADDRESS, {"email"}),
        ("", "+8613800138000", ADDRESS, {"sms", "email"}),
        ("sms", "+8613800138000", ADDRESS, {"sms"}),
        ("email", "+8613800138000", ADDRESS, {"email"}),
        ("both", "+8613800138000", ADDRESS, {"sms", "email"}),
        ("email", "+8613800138000", "", {"sms"}),  # no address for the choice: never silent
        ("", "", "", set()),
    ],
)
def test_r8_the_customer_is_told_as_they_chose_among_what_they_have(
    notify_by, mobile, email, expected
):
    customer = Customer(notify_by=notify_by, mobile=mobile, user=UserFactory.build(email=email))
    assert customer_notify_channels(customer, email_possible=True) == expected


def test_r8_email_is_not_offered_where_no_mail_can_go_out():
    customer = Customer(notify_by="email", mobile="+8613800138000", user=UserFactory.build())
    customer.user.email = ADDRESS
    assert customer_notify_channels(customer, email_possible=False) == {"sms"}


def test_the_database_refuses_an_unknown_notification_choice():
    from django.db import IntegrityError

    customer = customer_with()
    with pytest.raises(IntegrityError):
        Customer.objects.filter(pk=customer.pk).update(notify_by="pigeon")


# --- through a return's events --------------------------------------------------------------


def test_r8_sms_only_sends_no_email(django_capture_on_commit_callbacks):
    customer = customer_with(notify_by=NotifyBy.SMS)
    complete_a_return(customer, django_capture_on_commit_callbacks)
    assert told(customer) == (1, 0)
    assert mail.outbox == []


def test_r8_email_only_sends_no_sms_and_one_email_in_the_customers_language(
    django_capture_on_commit_callbacks,
):
    customer = customer_with(notify_by=NotifyBy.EMAIL, language="zh-hans")
    invoice = complete_a_return(customer, django_capture_on_commit_callbacks)
    assert told(customer) == (0, 1)
    [message] = mail.outbox
    assert message.to == [ADDRESS]
    assert message.subject == f"发票{invoice.number}：退票完成"
    assert message.body == (
        f"发票{invoice.number}已作废，¥12,345.67已恢复为可开票金额，可重新申请开票。\n\n"
        "您可在费用中心的“发票管理”中查看退票进度。\n\n云账单\n"
    )
    assert EmailNotification.objects.get().status == EmailStatus.SENT


def test_r8_both_sends_the_sms_and_the_email_in_english(django_capture_on_commit_callbacks):
    customer = customer_with(notify_by=NotifyBy.BOTH, language="en")
    invoice = complete_a_return(customer, django_capture_on_commit_callbacks)
    assert told(customer) == (1, 1)
    [message] = mail.outbox
    assert message.subject == f"Invoice {invoice.number}: Return completed"
    assert message.body == (
        f"Invoice {invoice.number} is voided and ¥12,345.67 is invoiceable again. You may apply "
        "for a new invoice.\n\nYou can follow your returns under Invoice Management in the "
        "Billing Center.\n\nCloud Billing\n"
    )
    sms = SmsMessage.objects.get(to=customer.mobile)
    assert sms.purpose == SmsPurpose.RETURN_COMPLETED


def test_r8_email_carries_the_typed_reason_whole_and_quoted():
    customer = customer_with(notify_by=NotifyBy.BOTH, language="en")
    invoice = issue_invoice(customer)
    rr = submit(invoice)
    reason = "The title does not match the registered company name. " * 4
    return_request_reject(
        return_request_id=rr.pk, actor=Actor.for_user(UserFactory(is_staff=True)), reason=reason
    )
    email = EmailNotification.objects.get()
    assert email.body.startswith(
        f"Your return of invoice {invoice.number} was rejected: “{reason.strip()[:-1]}”. "
        "You may return it again."
    )
    sms = SmsMessage.objects.get()
    assert sms.body.count("...") == 1  # the SMS shortened it to one segment; the email did not


def test_r8_email_only_falls_back_to_sms_where_mail_cannot_go_out(
    settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_EMAIL_ENABLED = False
    customer = customer_with(notify_by=NotifyBy.EMAIL)
    complete_a_return(customer, django_capture_on_commit_callbacks)
    assert told(customer) == (1, 0)


# --- once per event -------------------------------------------------------------------------


def queue(key="return:1:return_completed"):
    return email_notification_queue(
        to=ADDRESS,
        purpose=SmsPurpose.RETURN_COMPLETED,
        template="return_completed_voided",
        params={"number": "12345678", "amount": "¥12,345.67"},
        idempotency_key=key,
        language="en",
        related_return_id=1,
    )


def test_r8_an_email_is_queued_once_per_event(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = queue()
        second = queue()
    assert first.pk == second.pk
    assert len(callbacks) == 1
    assert len(mail.outbox) == 1


def test_r8_an_email_is_sent_once_however_often_its_task_runs():
    email = queue()
    assert email_notification_send(email_notification_id=email.pk) is True
    assert email_notification_send(email_notification_id=email.pk) is False
    email_send_task.apply(args=(email.pk,))
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts) == (EmailStatus.SENT, 1)


def test_r8_an_email_the_server_keeps_refusing_is_failed_with_the_error(monkeypatch):
    email = queue()

    def refuse(self, fail_silently=False):
        raise smtplib.SMTPServerDisconnected("mail server went away")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    email_send_task.apply(args=(email.pk,))
    email.refresh_from_db()
    assert email.status == EmailStatus.FAILED
    assert "mail server went away" in email.error_message
    assert email.sent_at is None


# --- the portal's settings page -------------------------------------------------------------


def test_the_customer_chooses_email_and_its_language_in_the_portal(client):
    customer = customer_with(notify_by="", email="", language="en")
    client.force_login(customer.user)
    url = reverse("billing:notification_settings")
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="notify_by" value="sms"' in page.content.decode()
    answer = client.post(url, {"notify_by": "both", "email": "a@example.cn", "language": "zh-hans"})
    assert answer.status_code == 302
    customer.refresh_from_db()
    customer.user.refresh_from_db()
    assert (customer.notify_by, customer.user.email, customer.language) == (
        "both",
        "a@example.cn",
        "zh-hans",
    )
    entry = AuditEntry.objects.get(action="customer.notifications_changed")
    assert (entry.actor_kind, entry.actor_user, entry.customer_id) == (
        ActorKind.CUSTOMER,
        customer.user,
        customer.pk,
    )
    assert entry.params == {"notify_by": "both", "language": "zh-hans", "email": "a@example.cn"}
    client.post(url, {"notify_by": "both", "email": "a@example.cn", "language": "zh-hans"})
    assert AuditEntry.objects.filter(action="customer.notifications_changed").count() == 1


def test_the_portal_refuses_email_without_an_address(client):
    customer = customer_with(notify_by="", email="", language="en")
    client.force_login(customer.user)
    answer = client.post(
        reverse("billing:notification_settings"),
        {"notify_by": "email", "email": "", "language": "en"},
    )
    assert answer.status_code == 400
    assert "Give an email address to be told by email." in answer.content.decode()
    customer.refresh_from_db()
    assert customer.notify_by == ""


def test_the_portal_refuses_sms_without_a_mobile(client):
    customer = customer_with(notify_by="", mobile="", email=ADDRESS, language="zh-hans")
    client.force_login(customer.user)
    answer = client.post(
        reverse("billing:notification_settings"),
        {"notify_by": "sms", "email": ADDRESS, "language": "zh-hans"},
    )
    assert answer.status_code == 400
    assert "No mobile number is on file for SMS" in answer.content.decode()
    customer.refresh_from_db()
    assert customer.notify_by == ""


def test_r8_the_return_of_a_customer_told_by_email_shows_the_email_step(
    client, django_capture_on_commit_callbacks
):
    from returns.models import ReturnRequest

    customer = customer_with(notify_by=NotifyBy.EMAIL, language="en")
    invoice = complete_a_return(customer, django_capture_on_commit_callbacks)
    rr = ReturnRequest.objects.get(invoice=invoice)
    client.force_login(customer.user)
    page = client.get(reverse("billing:return_detail", args=[rr.pk]))
    text = page.content.decode()
    assert "Email sent" in text
    assert "SMS sent" not in text
