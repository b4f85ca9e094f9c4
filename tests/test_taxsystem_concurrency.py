"""Two finance clerks recording the same tax-system outcome at the same instant (R6, R7)."""

import pytest

from core.audit.actor import Actor
from returns.models import ReturnRequest, ReturnState
from returns.services import return_request_record_outcome
from tests.concurrency import run_concurrently
from tests.factories import CustomerFactory, UserFactory, issue_invoice
from tests.returns_helpers import assert_returned_exactly_once, log_paper, submit
from tests.test_taxsystem import last_month, red_letter

pytestmark = pytest.mark.django_db(transaction=True)


def test_r6_r7_two_finance_staff_recording_at_once_record_one_outcome(settings):
    settings.TAX_SYSTEM_BACKEND = "manual"
    invoice = issue_invoice(CustomerFactory(), issued_at=last_month())
    clerks = [UserFactory(username=f"clerk-{n}", is_staff=True) for n in range(2)]
    submit(invoice)
    log_paper(invoice, clerks[0])  # eager Celery: processed on commit, now awaiting
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert rr.state == ReturnState.AWAITING_TAX

    results = run_concurrently(
        *[
            lambda clerk=clerk: return_request_record_outcome(
                return_request_id=rr.pk, result=red_letter(invoice), actor=Actor.for_user(clerk)
            )
            for clerk in clerks
        ]
    )
    assert all(isinstance(r, ReturnRequest) for r in results), results
    assert_returned_exactly_once(invoice, outcome="reversed")
