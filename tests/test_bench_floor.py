"""The benchmark's floor (bench/floor) writes the rows the app writes for a refund, in raw SQL:
it breaks when the schema grows a required column, so it is run against the test database
(as the P1 figure compares the two, a floor that fails would measure nothing)."""

import pytest
from django.test import RequestFactory

from bench.floor.views import refund
from core.audit.models import AuditEntry
from returns.models import ReturnEvent, ReturnRequest, ReturnState
from returns.references import reference_parse

pytestmark = pytest.mark.django_db


def test_the_floors_refund_writes_the_return_its_event_and_its_audit_row(customer, invoice):
    response = refund(RequestFactory().post("/", {"reason": "bench"}), customer.pk, invoice.pk)
    assert response.status_code == 302
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert response["Location"] == f"/billing/returns/{rr.pk}/"
    assert (rr.state, rr.reason, rr.submitted_by) == (ReturnState.SUBMITTED, "bench", customer.user)
    assert reference_parse(rr.reference) == rr.reference
    event = ReturnEvent.objects.get(return_request=rr)
    assert (event.to_state, event.actor, event.actor_kind) == (
        "submitted",
        customer.user,
        "customer",
    )
    entry = AuditEntry.objects.get(action="return.submitted", object_id=str(rr.pk))
    assert (entry.actor_kind, entry.actor_user, entry.customer_id) == (
        "customer",
        customer.user,
        customer.pk,
    )
