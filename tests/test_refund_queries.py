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


def test_p1_submitting_a_paper_return_takes_two_statements_and_no_savepoint(invoice):
    # Lock the invoice with its blocking return; insert the return, its event and its audit row
    # (issue 11) and look for paper logged before the submit (R4), in one statement.
    actor = invoice.customer.user
    with CaptureQueriesContext(connection) as captured:
        rr = submit(invoice, actor)

    statements = [q["sql"] for q in captured.captured_queries]
    savepoints = [sql for sql in statements if "SAVEPOINT" in sql.upper()]
    assert rr.state == ReturnState.SUBMITTED
    # Only the service's own transaction, a savepoint here inside the test's transaction.
    assert len(savepoints) == 2, savepoints
    assert len(statements) - len(savepoints) == 2, statements


def test_p1_the_refund_post_is_at_most_five_statements_and_its_transaction(
    client, invoice, django_assert_max_num_queries
):
    # The view reads session, user, then customer, invoice and blocking return in one statement
    # (3); the service 2. Its transaction is a savepoint pair here, inside the test's
    # transaction: 7 in all.
    client.force_login(invoice.customer.user)
    with django_assert_max_num_queries(5 + 2):
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


# The one statement that inserts the return, its event and its audit row (issue 16, P1) ---------


def _row(obj, *, without=()):
    return {
        f.attname: getattr(obj, f.attname)
        for f in type(obj)._meta.concrete_fields
        if f.attname not in without
    }


def _written(rr):
    """The return as saved, its event and its audit row, read back from the database."""
    from core.audit.models import AuditEntry

    rr = ReturnRequest.objects.get(pk=rr.pk)
    (event,) = rr.events.all()
    (entry,) = AuditEntry.objects.filter(object_type="returns.returnrequest", object_id=str(rr.pk))
    return rr, event, entry


def test_p1_the_one_statement_writes_the_rows_the_orm_writes_one_by_one(customer, monkeypatch):
    # The same submit, once through the statement and once through the ORM's inserts (SQLite's
    # path, ``return_event_record``): the same values but the ids, the times and the reference.
    from returns.services import submission
    from tests.factories import issue_invoice

    fast = submit(issue_invoice(customer))
    with monkeypatch.context() as patched:
        patched.setattr(submission, "_inserts_in_with", lambda: False)
        slow = submit(issue_invoice(customer))

    varying = {"id", "reference", "invoice_id", "created_at", "updated_at", "at"}
    varying |= {"return_request_id", "object_id", "invoice_code", "invoice_number"}
    for submitted in (fast, slow):  # the copy of the invoice's code and number, either way
        saved = ReturnRequest.objects.get(pk=submitted.pk)
        assert (saved.invoice_code, saved.invoice_number) == (
            submitted.invoice.code,
            submitted.invoice.number,
        )
    for fast_row, slow_row in zip(_written(fast), _written(slow), strict=True):
        assert _row(fast_row, without=varying) == _row(slow_row, without=varying)
    rr, event, entry = _written(fast)
    assert event.return_request_id == rr.pk
    assert entry.object_id == str(rr.pk)
    assert rr.created_at <= event.created_at
    assert rr.created_at <= entry.at
    # The instance the service returns is the saved row, as ``objects.create`` leaves it.
    assert _row(fast) == _row(rr)
    assert not fast._state.adding
    assert fast._state.db == "default"


def test_p1_no_save_signal_listens_to_the_rows_the_statement_inserts():
    # ``Model.save`` sends pre_save and post_save; the statement does not. A receiver added for
    # one of these models must come with a change to ``returns.services.submission``.
    from django.db.models.signals import post_save, pre_save

    from core.audit.models import AuditEntry
    from returns.models import ReturnEvent

    for model in (ReturnRequest, ReturnEvent, AuditEntry):
        assert not pre_save.has_listeners(model), model
        assert not post_save.has_listeners(model), model


def test_r2_the_partial_unique_constraint_refuses_a_second_open_return_the_read_missed(
    invoice, monkeypatch
):
    from returns.services import submission

    first = submit(invoice)
    locked = submission._invoice_locked

    def missing_the_first(**kwargs):
        found, _blocking = locked(**kwargs)
        return found, None  # as if the first return were not there yet

    monkeypatch.setattr(submission, "_invoice_locked", missing_the_first)
    with pytest.raises(ReturnAlreadyOpen):
        submit(invoice)
    assert list(ReturnRequest.objects.filter(invoice=invoice)) == [first]


def test_a_reference_drawn_twice_is_refused_and_nothing_is_saved(customer, monkeypatch):
    from core.audit.models import AuditEntry
    from returns.exceptions import ReturnReferenceTaken
    from returns.models import ReturnEvent
    from tests.factories import issue_invoice

    first = submit(issue_invoice(customer))
    second = issue_invoice(customer)
    counts = [m.objects.count() for m in (ReturnRequest, ReturnEvent, AuditEntry)]
    field = ReturnRequest._meta.get_field("reference")
    monkeypatch.setattr(field, "_get_default", lambda: first.reference)  # the next one drawn
    with pytest.raises(ReturnReferenceTaken):
        submit(second)
    assert [m.objects.count() for m in (ReturnRequest, ReturnEvent, AuditEntry)] == counts


def test_a_refused_audit_row_is_a_fault_not_an_open_return_and_nothing_is_saved(
    invoice, monkeypatch
):
    # The audit row's own check (an action is named) fails the whole statement: no return
    # without its audit row, and the error is not mistaken for the customer's second submit.
    from django.db import IntegrityError

    from core.audit import services as audit_services
    from returns.services import submission

    def unnamed(**kwargs):
        entry = audit_services.audit_entry_new(**kwargs)
        entry.action = ""
        return entry

    monkeypatch.setattr(submission, "audit_entry_new", unnamed)
    with pytest.raises(IntegrityError, match="audit_action_named"):
        submit(invoice)
    assert not ReturnRequest.objects.filter(invoice=invoice).exists()


def test_p1_the_refunds_statements_are_prepared_once_run_a_few_times(customer):
    # PostgreSQL plans a prepared statement once per connection instead of on each request
    # (core.sql.prepared_cursor, DATABASE_PREPARED_STATEMENTS); the ORM's are never prepared.
    from tests.factories import issue_invoice

    for _ in range(7):
        submit(issue_invoice(customer))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("FOR UPDATE OF i" in statement for statement in prepared), prepared
    assert any(statement.startswith("WITH r AS (INSERT") for statement in prepared), prepared
    assert not any("SAVEPOINT" in statement for statement in prepared), prepared
