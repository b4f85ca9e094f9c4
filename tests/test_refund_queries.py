"""The refund's statements are pinned (issue 16, P1): each fact read once, no savepoint of its
own, the blocking return read with the lock. Counted, never timed."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.audit.actor import Actor
from returns.exceptions import ReturnAlreadyOpen
from returns.models import ReturnRequest, ReturnState
from returns.services import return_request_submit

pytestmark = pytest.mark.django_db

REFUND = {"problem": "title", "reason_code": "issuing_error", "reason": "Wrong title"}


def submit(invoice, actor=None):
    return return_request_submit(
        invoice_id=invoice.pk,
        customer_id=invoice.customer_id,
        actor=Actor.for_user(actor or invoice.customer.user),
        reason="Wrong title",
    )


def test_p1_submitting_a_paper_return_takes_five_statements_and_no_savepoint(invoice):
    # Lock the invoice with its blocking return, insert the return, its event and its audit row
    # (issue 11), look for paper logged before the submit (R4).
    actor = invoice.customer.user
    with CaptureQueriesContext(connection) as captured:
        rr = submit(invoice, actor)

    statements = [q["sql"] for q in captured.captured_queries]
    savepoints = [sql for sql in statements if "SAVEPOINT" in sql.upper()]
    assert rr.state == ReturnState.SUBMITTED
    # Only the service's own transaction, a savepoint here inside the test's transaction.
    assert len(savepoints) == 2, savepoints
    assert len(statements) - len(savepoints) == 5, statements


def test_p1_the_refund_post_is_at_most_eight_statements_and_its_transaction(
    client, invoice, django_assert_max_num_queries
):
    # The view reads session, user, then customer, invoice and blocking return in one statement
    # (3); the service 5. Its transaction is a savepoint pair here, inside the test's
    # transaction: 10 in all.
    client.force_login(invoice.customer.user)
    with django_assert_max_num_queries(8 + 2):
        response = client.post(reverse("billing:refund", args=[invoice.pk]), REFUND)

    assert response.status_code == 302
    assert ReturnRequest.objects.filter(invoice=invoice, state=ReturnState.SUBMITTED).count() == 1


def test_r2_a_second_submit_is_refused_with_the_lock_read_and_the_first_return_stays(invoice):
    first = submit(invoice)

    with pytest.raises(ReturnAlreadyOpen):
        submit(invoice)
    assert list(ReturnRequest.objects.filter(invoice=invoice)) == [first]


def test_p1_the_hand_written_reads_make_the_instances_the_orm_makes(invoice):
    # core.sql: the select lists come from the models, so every field is read, converted
    # as the ORM converts it (dates, decimals), and the customer comes with the locked read.
    from django.db import transaction

    from invoices.models import Invoice
    from returns.selectors import invoice_to_refund_for_user
    from returns.services.submission import _invoice_locked

    def model_to_dict(obj):
        return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}

    expected = Invoice.objects.select_related("customer").get(pk=invoice.pk)
    read, blocking_return_id = invoice_to_refund_for_user(
        user_id=invoice.customer.user_id, invoice_id=invoice.pk
    )
    assert model_to_dict(read) == model_to_dict(expected)
    assert [read.issued_at, read.total, blocking_return_id] == [
        expected.issued_at,
        expected.total,
        None,
    ]
    with transaction.atomic():
        locked, blocking_return_id = _invoice_locked(
            invoice_id=invoice.pk, customer_id=invoice.customer_id
        )
    assert blocking_return_id is None
    assert model_to_dict(locked) == model_to_dict(expected)
    assert model_to_dict(locked.customer) == model_to_dict(expected.customer)

    rr = submit(invoice)
    _read, blocking_return_id = invoice_to_refund_for_user(
        user_id=invoice.customer.user_id, invoice_id=invoice.pk
    )
    assert blocking_return_id == rr.pk


def test_r12_the_refund_read_finds_nothing_for_another_user_or_a_user_without_customer(invoice):
    from returns.selectors import invoice_to_refund_for_user
    from tests.factories import CustomerFactory, UserFactory

    stranger = CustomerFactory()
    staff = UserFactory(is_staff=True)
    for user in (stranger.user, staff):
        assert invoice_to_refund_for_user(user_id=user.pk, invoice_id=invoice.pk) is None
