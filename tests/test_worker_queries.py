"""The statements a worker runs for one return are pinned (issue 16, P3): the processing task,
from *processing* to its outcome with the credit and the SMS queued, and the SMS task; savepoints
apart. Counted, never timed. Eager mode here: no outbox rows (a worker with a broker adds one
insert, one update after publishing and one delete when the task is done, per task)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from invoices.models import LedgerEntry, LedgerKind
from notifications.models import SmsMessage, SmsStatus
from notifications.tasks import sms_send_task
from returns.tasks import return_process_task
from tests.factories import issue_invoice
from tests.returns_helpers import assert_returned_exactly_once, ready_to_process

pytestmark = pytest.mark.django_db


def _statements(captured: CaptureQueriesContext) -> tuple[list[str], list[str]]:
    statements = [q["sql"] for q in captured.captured_queries]
    savepoints = [sql for sql in statements if "SAVEPOINT" in sql.upper()]
    return [sql for sql in statements if sql not in savepoints], savepoints


def test_p3_a_void_from_processing_to_its_queued_sms_takes_17_statements(invoice, finance_user):
    rr = ready_to_process(invoice, finance_user)

    with CaptureQueriesContext(connection) as captured:
        return_process_task(rr.pk)

    statements, savepoints = _statements(captured)
    assert_returned_exactly_once(invoice, outcome="voided", sms_status=SmsStatus.QUEUED)
    # 28 before issue 16's P3 work, 20 at the stop before this one. Processing: lock the
    # invoice, the return with its invoice, customer, user and paper, the invoice with its
    # pending request, the request, and the transition with its event and audit row (5). The
    # return and the request with what the backend is told (2), the sandbox platform's record
    # of the serial and its result (2). The outcome: lock the invoice and the return (2), the
    # request's invoice, customer and request (3); the invoice, the request, the credit and its
    # audit row (1: four statements before); the transition (1); the SMS (1).
    assert len(statements) == 17, statements
    # Five savepoint pairs inside the test's transaction: the three transactions (processing,
    # the sandbox platform's record, the outcome) and, inside them, the tax request's opening
    # and its outcome's record, which leave their caller's transaction usable when they refuse.
    # Six before: the SMS is queued in the outcome's transaction without one of its own.
    assert len(savepoints) == 10, savepoints


def test_p3_a_reversal_takes_three_more_for_its_red_letter_invoice(customer, finance_user):
    last_month = timezone.now() - dt.timedelta(days=40)
    invoice = issue_invoice(customer, issued_at=last_month)
    rr = ready_to_process(invoice, finance_user)

    with CaptureQueriesContext(connection) as captured:
        return_process_task(rr.pk)

    statements, _savepoints = _statements(captured)
    assert_returned_exactly_once(invoice, outcome="reversed", sms_status=SmsStatus.QUEUED)
    # 36 before, then 23. The void's 17, and: the sandbox's red-letter number (one statement),
    # whether the number is a blue invoice's, and the red-letter invoice's insert (the event
    # and the SMS are worded from it without reading it back).
    assert len(statements) == 17 + 3, statements


def test_p3_the_sms_task_takes_six_statements(invoice, finance_user):
    rr = ready_to_process(invoice, finance_user)
    return_process_task(rr.pk)
    sms = SmsMessage.objects.get(related_return_id=rr.pk)

    with CaptureQueriesContext(connection) as captured:
        sms_send_task(sms.pk)

    statements, _savepoints = _statements(captured)
    sms.refresh_from_db()
    assert sms.status == SmsStatus.SENT
    assert (
        LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED).count() == 1
    )
    # As before: lock it and mark it sending; lock it again and write the answer, the advisory
    # lock on the provider's id and the early status callbacks that may wait for it.
    assert len(statements) == 6, statements
