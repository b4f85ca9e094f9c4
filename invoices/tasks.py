"""Thin tasks: ids in, a service does the work, the task owns the retry policy."""

import smtplib

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from core.audit.actor import Actor
from invoices.services import invoice_email_send
from invoices.taxsystem.interface import TaxSystemTransientError
from invoices.taxsystem.services import tax_invoice_issue


@shared_task(
    acks_late=True,
    autoretry_for=(TaxSystemTransientError, OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def invoice_issue_task(application_id: int) -> None:
    """Issue a digital invoice through the tax system (idempotent by the application's serial).
    Given up, the application stays pending in finance's queue, to be issued by hand."""
    tax_invoice_issue(application_id=application_id, actor=Actor.system(invoice_issue_task.name))


@shared_task(
    acks_late=True,
    autoretry_for=(smtplib.SMTPException, OSError, OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=settings.TASK_LONGEST_COUNTDOWN_SECONDS,
    retry_jitter=True,
    max_retries=6,
)
def invoice_email_task(invoice_id: int) -> None:
    """Email a digital invoice's file to the address its application gave."""
    invoice_email_send(invoice_id=invoice_id)
