"""Every action is recorded (issue 11): one test per action asserts its audit row — the actor's
type, who (user, customer or task name), what (action, object, parameters) and why. The log is
append-only (the database refuses UPDATE and DELETE); staff read it in the back office; the
customer's history shows only what concerns them, never a staff member's name."""

from zoneinfo import ZoneInfo

import pytest
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

import core.audit.services as audit_services
from core.audit.actor import Actor, ActorKind
from core.audit.models import AuditEntry
from core.audit.services import audit_record
from invoices.models import InvoiceMedium, InvoiceType
from invoices.services import invoice_application_create, invoice_issue, statement_settle
from invoices.tasks import invoice_issue_task
from invoices.taxsystem.interface import TaxResult
from notifications.services import sms_mark_failed, sms_message_queue, sms_resend
from returns.audit import mail_receipt_matched_record, mail_receipt_sent_back_record
from returns.models import MailReceipt, ReturnRequest, ReturnState
from returns.roles import FINANCE_STAFF
from returns.services import (
    red_letter_form_review,
    red_letter_form_upload,
    return_request_cancel,
    return_request_correct_outcome,
    return_request_mark_failed,
    return_request_record_outcome,
    return_request_reject,
    return_request_retry,
    return_request_update_tracking,
)
from tests.factories import (
    VALID_USCC,
    CustomerFactory,
    StatementFactory,
    UserFactory,
    issue_invoice,
    staff_in_role,
)
from tests.returns_helpers import log_paper, pdf_upload, submit
from tests.test_taxsystem import completed_reversal

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture
def manual(settings):
    settings.TAX_SYSTEM_BACKEND = "manual"


@pytest.fixture
def finance(db):
    return staff_in_role(FINANCE_STAFF, username="fin")


def entry(action: str, **filters) -> AuditEntry:
    return AuditEntry.objects.get(action=action, **filters)


def customer_of(rr: ReturnRequest) -> Actor:
    return Actor.customer(rr.invoice.customer.user, rr.invoice.customer_id)


def assert_on_return(row: AuditEntry, rr: ReturnRequest) -> None:
    assert (row.object_type, row.object_id) == ("returns.returnrequest", str(rr.pk))
    assert row.customer_id == rr.invoice.customer_id


def awaiting_by_hand(invoice, finance_user, capture) -> ReturnRequest:
    """A return waiting for finance to record the tax system's outcome (manual backend)."""
    submit(invoice)
    with capture(execute=True):
        log_paper(invoice, finance_user)
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert rr.state == ReturnState.AWAITING_TAX
    return rr


# Invoices -----------------------------------------------------------------------------------


def test_invoice_issued_by_finance_is_recorded_with_the_staff_user(customer, finance_user):
    statement_settle(statement_id=StatementFactory(customer=customer).pk)
    application = invoice_application_create(
        customer_id=customer.pk,
        invoice_type=InvoiceType.ORDINARY,
        title=customer.name,
        amount="500.00",
        taxpayer_id=VALID_USCC,
        mailing_recipient="Li Lei",
        mailing_phone="13800138000",
        mailing_address="2 Example Street",
        mailing_postal_code="310000",
    )
    invoice = invoice_issue(
        application_id=application.pk,
        code="3300201130",
        number="77000001",
        actor=Actor.staff(finance_user),
    )
    row = entry("invoice.issued")
    assert (row.actor_kind, row.actor_user, row.actor_task) == ("staff", finance_user, "")
    assert (row.object_type, row.object_id) == ("invoices.invoice", str(invoice.pk))
    assert row.customer_id == customer.pk
    assert row.params["number"] == "77000001"
    assert row.text == "Invoice 3300201130 77000001 issued (¥500.00)"


def test_invoice_issued_by_the_issue_task_is_recorded_with_the_tasks_name(customer):
    statement_settle(statement_id=StatementFactory(customer=customer).pk)
    application = invoice_application_create(
        customer_id=customer.pk,
        invoice_type=InvoiceType.ORDINARY,
        medium=InvoiceMedium.DIGITAL,
        title=customer.name,
        amount="500.00",
        taxpayer_id=VALID_USCC,
    )
    invoice_issue_task(application.pk)  # the sandbox issues a digital invoice at once
    row = entry("invoice.issued")
    assert (row.actor_kind, row.actor_user) == ("system", None)
    assert row.actor_task == "invoices.tasks.invoice_issue_task"
    assert row.customer_id == customer.pk


def test_statement_settled_is_recorded_as_the_systems_doing(customer):
    statement = StatementFactory(customer=customer, amount="1234.00")
    statement_settle(statement_id=statement.pk, actor=Actor.system("billing.settle_statements"))
    row = entry("statement.settled")
    assert (row.actor_kind, row.actor_task) == ("system", "billing.settle_statements")
    assert (row.object_type, row.object_id) == ("invoices.statement", str(statement.pk))
    assert row.customer_id == customer.pk
    assert row.params == {"amount": "1234.00"}


# The customer's actions ---------------------------------------------------------------------


def test_return_submitted_is_recorded_with_the_customer_and_their_reason(invoice):
    rr = submit(invoice, reason="Wrong title, should be Ltd.")
    row = entry("return.submitted")
    assert_on_return(row, rr)
    assert (row.actor_kind, row.actor_user) == ("customer", invoice.customer.user)
    assert row.actor_customer_id == invoice.customer_id
    assert row.reason == "Wrong title, should be Ltd."  # as typed
    assert row.params["to"] == "submitted"


def test_return_cancelled_is_recorded_with_the_customer(invoice):
    rr = submit(invoice)
    return_request_cancel(return_request_id=rr.pk, actor=customer_of(rr))
    row = entry("return.cancelled")
    assert_on_return(row, rr)
    assert (row.actor_kind, row.actor_user, row.actor_customer_id) == (
        "customer",
        invoice.customer.user,
        invoice.customer_id,
    )
    assert row.params["note_key"] == "return.cancelled_by_customer"


def test_tracking_edited_is_recorded_with_before_and_after(invoice):
    rr = submit(invoice, courier="SF", tracking_number="SF100")
    return_request_update_tracking(
        return_request_id=rr.pk, actor=customer_of(rr), courier="EMS", tracking_number="EM200"
    )
    row = entry("return.tracking_edited")
    assert_on_return(row, rr)
    assert (row.actor_kind, row.actor_user) == ("customer", invoice.customer.user)
    assert row.params == {
        "courier": "EMS",
        "tracking_number": "EM200",
        "before": {"courier": "SF", "tracking_number": "SF100"},
    }


def test_form_uploaded_then_replaced_are_recorded_with_the_customer(special_invoice):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    red_letter_form_upload(
        return_request_id=rr.pk,
        actor=customer_of(rr),
        upload=pdf_upload("again.pdf"),
        form_number="4403202612000022",
    )
    uploaded, replaced = entry("red_letter_form.uploaded"), entry("red_letter_form.replaced")
    for row in (uploaded, replaced):
        assert_on_return(row, rr)
        assert (row.actor_kind, row.actor_user) == ("customer", special_invoice.customer.user)
    assert uploaded.params["form_number"] == "4403202612000011"
    assert replaced.params["form_number"] == "4403202612000022"


@pytest.mark.parametrize("approve", [True, False])
def test_form_reviewed_is_recorded_with_the_reviewer_and_the_reason(special_invoice, approve):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    reviewer = UserFactory(username="rev", is_staff=True)
    form = rr.red_letter_forms.get()
    red_letter_form_review(
        red_letter_form_id=form.pk,
        reviewer=Actor.staff(reviewer),
        approve=approve,
        reason="" if approve else "The seal is unreadable",
    )
    row = entry("red_letter_form.approved" if approve else "red_letter_form.rejected")
    assert_on_return(row, rr)
    assert (row.actor_kind, row.actor_user) == ("staff", reviewer)
    assert row.params["form"] == form.pk
    assert row.reason == ("" if approve else "The seal is unreadable")


# Finance's actions --------------------------------------------------------------------------


def test_paper_logged_unmatched_is_recorded_with_finance_and_their_notes(invoice, finance_user):
    log_paper(invoice, finance_user, notes="Envelope torn at one corner")
    receipt = MailReceipt.objects.get(invoice=invoice)
    row = entry("paper.logged")
    assert (row.actor_kind, row.actor_user) == ("staff", finance_user)
    assert (row.object_type, row.object_id) == ("returns.mailreceipt", str(receipt.pk))
    assert row.customer_id == invoice.customer_id
    assert row.params["outcome"] == "unmatched"
    assert row.params["return"] is None
    assert row.reason == "Envelope torn at one corner"


def test_paper_logged_for_a_return_is_recorded_with_the_received_transition(invoice, finance_user):
    rr = submit(invoice)
    log_paper(invoice, finance_user, complete=False)
    logged = entry("paper.logged")
    assert (logged.actor_kind, logged.actor_user) == ("staff", finance_user)
    assert logged.params["outcome"] == "matched"
    assert logged.params["return"] == rr.pk
    assert logged.params["missing"] == ["invoice_form"]
    rejected = entry("return.rejected")
    assert_on_return(rejected, rr)
    assert (rejected.actor_kind, rejected.actor_user) == ("staff", finance_user)
    assert rejected.params["note_key"] == "paper.incomplete"


def test_the_post_rooms_hooks_record_paper_matched_and_sent_back(invoice, finance_user):
    log_paper(invoice, finance_user)
    receipt = MailReceipt.objects.get(invoice=invoice)
    rr = submit(invoice)  # matched on submit
    clerk = Actor.staff(finance_user)
    with transaction.atomic():
        mail_receipt_matched_record(receipt=receipt, return_request=rr, actor=clerk)
        mail_receipt_sent_back_record(
            receipt=receipt, actor=clerk, tracking_number="SF999", reason="Not ours"
        )
    matched, sent_back = entry("paper.matched"), entry("paper.sent_back")
    for row in (matched, sent_back):
        assert (row.actor_kind, row.actor_user) == ("staff", finance_user)
        assert (row.object_type, row.object_id) == ("returns.mailreceipt", str(receipt.pk))
    assert matched.params["return"] == rr.pk
    assert (sent_back.params["tracking_number"], sent_back.reason) == ("SF999", "Not ours")


def test_return_rejected_by_finance_is_recorded_with_the_typed_reason(invoice, finance_user):
    rr = submit(invoice)
    return_request_reject(
        return_request_id=rr.pk, actor=Actor.staff(finance_user), reason="Wrong envelope"
    )
    row = entry("return.rejected")
    assert_on_return(row, rr)
    assert (row.actor_kind, row.actor_user) == ("staff", finance_user)
    assert row.reason == "Wrong envelope"


def test_return_retried_is_recorded_with_the_staff_user(
    manual, invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = awaiting_by_hand(invoice, finance_user, django_capture_on_commit_callbacks)
    return_request_mark_failed(
        return_request_id=rr.pk, error="boom", actor=Actor.system("returns.tasks.x")
    )
    failed = entry("return.failed")
    assert (failed.actor_kind, failed.actor_task) == ("system", "returns.tasks.x")
    assert failed.reason == "boom"
    return_request_retry(return_request_id=rr.pk, actor=Actor.staff(finance_user))
    row = entry("return.retried")
    assert_on_return(row, rr)
    assert (row.actor_kind, row.actor_user) == ("staff", finance_user)
    assert (row.params["from"], row.params["to"]) == ("failed", "processing")


def test_tax_outcome_recorded_by_finance_is_recorded_with_the_staff_user(
    manual, invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = awaiting_by_hand(invoice, finance_user, django_capture_on_commit_callbacks)
    today = timezone.localdate(timezone.now(), ZoneInfo("Asia/Shanghai"))
    return_request_record_outcome(
        return_request_id=rr.pk,
        result=TaxResult.voided(rr.tax_request.serial, today),
        actor=Actor.staff(finance_user),
    )
    row = entry("tax.outcome_recorded")
    assert (row.actor_kind, row.actor_user) == ("staff", finance_user)
    assert (row.object_type, row.object_id) == ("invoices.taxrequest", str(rr.tax_request_id))
    assert row.customer_id == invoice.customer_id
    assert (row.params["operation"], row.params["outcome"]) == ("void", f"{today:%Y-%m-%d}")
    completed = entry("return.completed")
    assert (completed.actor_kind, completed.actor_user) == ("staff", finance_user)


def test_tax_outcome_recorded_from_the_sandbox_names_the_task(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert rr.state == ReturnState.COMPLETED
    row = entry("tax.outcome_recorded")
    assert (row.actor_kind, row.actor_user) == ("system", None)
    assert row.actor_task in {
        "returns.tasks.return_process_task",  # it submits when the backend answers at once
        "returns.tasks.return_tax_submit_task",
        "returns.tasks.return_tax_poll_task",
    }
    sent = entry("return.awaiting_tax")
    assert (sent.actor_kind, sent.actor_task) == ("system", "returns.tasks.return_process_task")


def test_tax_outcome_corrected_is_recorded_with_the_reviewer_and_the_reason(
    manual, customer, finance_user, django_capture_on_commit_callbacks
):
    _invoice, rr = completed_reversal(customer, finance_user, django_capture_on_commit_callbacks)
    reviewer = UserFactory(username="reviewer", is_staff=True)
    return_request_correct_outcome(
        return_request_id=rr.pk,
        actor=Actor.staff(reviewer),
        reason="Typed 61000001 for 61000010",
        number="61000010",
    )
    row = entry("tax.outcome_corrected")
    assert (row.actor_kind, row.actor_user) == ("staff", reviewer)
    assert (row.object_type, row.object_id) == ("invoices.taxrequest", str(rr.tax_request_id))
    assert row.params["after"]["number"] == "61000010"
    assert row.reason == "Typed 61000001 for 61000010"
    on_return = entry("return.outcome_corrected")
    assert_on_return(on_return, rr)
    assert on_return.actor_user == reviewer


def test_sms_resent_is_recorded_with_the_staff_user(
    finance_user, django_capture_on_commit_callbacks
):
    sms = sms_message_queue(
        to="+8613800138000",
        body="Hello",
        purpose="return_completed",
        idempotency_key="return:9:return_completed",
        related_return_id=9,
    )
    sms_mark_failed(sms_message_id=sms.pk, error="gave up")
    with django_capture_on_commit_callbacks(execute=False):
        sms_resend(sms_message_id=sms.pk, actor=Actor.staff(finance_user))
    row = entry("sms.resent")
    assert (row.actor_kind, row.actor_user) == ("staff", finance_user)
    assert (row.object_type, row.object_id) == ("notifications.smsmessage", str(sms.pk))
    assert (row.params["outcome"], row.params["return"]) == ("requeued", 9)


@pytest.mark.parametrize(
    "path", ["returns/returnrequest", "invoices/invoice", "invoices/ledgerentry"]
)
def test_an_export_is_recorded_with_the_staff_user_and_the_filters(client, finance, invoice, path):
    client.force_login(finance)
    response = client.get(f"/admin/{path}/export.csv?q=3300")
    assert response.status_code == 200
    row = entry("export.downloaded")
    assert (row.actor_kind, row.actor_user) == ("staff", finance)
    assert row.object_type == path.replace("/", ".")
    assert (row.params["format"], row.params["query"]) == ("csv", "q=3300")


# The log is append-only, and its actor is typed ---------------------------------------------


def test_an_audit_row_is_inserted_but_never_updated(invoice):
    rr = submit(invoice)
    row = entry("return.submitted")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=row.pk).update(reason="rewritten")
    row.reason = "rewritten"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        row.save()
    row.refresh_from_db()
    assert row.reason == "Wrong title"
    # Inserting goes on working (the other way of the same guard).
    return_request_cancel(return_request_id=rr.pk, actor=customer_of(rr))
    assert AuditEntry.objects.filter(object_id=str(rr.pk)).count() == 2


def test_an_audit_row_is_never_deleted(invoice):
    submit(invoice)
    row = entry("return.submitted")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=row.pk).delete()
    assert AuditEntry.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"actor_kind": "system", "actor_task": ""},  # a system actor names its task
        {"actor_kind": "staff"},  # a person is a user
        {"actor_kind": "customer", "with_user": True},  # a customer names their customer
        {"actor_kind": "robot", "actor_task": "x"},
    ],
)
def test_an_untyped_actor_is_refused_by_the_database(fields, finance_user):
    fields = dict(fields)
    if fields.pop("with_user", False):
        fields["actor_user"] = finance_user
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEntry.objects.create(action="x", object_type="t.t", object_id="1", **fields)


def test_each_kind_of_typed_actor_is_accepted_by_the_database(finance_user, customer):
    for actor in (
        Actor.system("returns.tasks.return_process_task"),
        Actor.staff(finance_user),
        Actor.customer(customer.user, customer.pk),
    ):
        audit_record(actor=actor, action="x", object_type="t.t", object_id=1)
    assert sorted(AuditEntry.objects.values_list("actor_kind", flat=True)) == [
        ActorKind.CUSTOMER,
        ActorKind.STAFF,
        ActorKind.SYSTEM,
    ]


def test_an_actor_is_built_typed_or_not_at_all(finance_user):
    with pytest.raises(ValueError, match="task name"):
        Actor(ActorKind.SYSTEM, user=finance_user, task="x")
    with pytest.raises(ValueError, match="names its customer"):
        Actor(ActorKind.CUSTOMER, user=finance_user)
    with pytest.raises(ValueError, match="is a user"):
        Actor(ActorKind.STAFF)


def test_the_action_and_the_audit_row_commit_together_or_not_at_all(invoice, monkeypatch):
    # The database refuses the audit row (an action longer than its column): the cancel's
    # update and its event, written before it or in the same statement (issue 16, P3: one
    # statement on PostgreSQL, the ORM's three on SQLite), go with it.
    rr = submit(invoice)
    events = rr.events.count()
    real = audit_services.audit_entry_new

    def refused_by_the_database(**kwargs):
        entry = real(**kwargs)
        entry.action = "x" * 65
        return entry

    monkeypatch.setattr("core.audit.services.audit_entry_new", refused_by_the_database)
    monkeypatch.setattr("returns.services._common.audit_entry_new", refused_by_the_database)
    with pytest.raises(DatabaseError):
        return_request_cancel(return_request_id=rr.pk, actor=customer_of(rr))
    rr.refresh_from_db()
    assert rr.state == ReturnState.SUBMITTED  # the cancel rolled back with its audit row
    assert rr.events.count() == events


# Who reads what -----------------------------------------------------------------------------


def test_staff_read_every_action_on_a_return_in_chinese_or_english(client, finance, invoice):
    rr = submit(invoice)
    log_paper(invoice, UserFactory(username="clerk.wang", is_staff=True), notes="Internal note")
    client.force_login(finance)
    url = f"/admin/audit/auditentry/?scope=return:{rr.pk}"
    page = client.get(url).content.decode()
    assert "clerk.wang" in page
    assert "Internal note" in page
    assert f"Paper invoice {invoice.number} logged for return {rr.reference}" in page
    page = client.get(url, **ZH).content.decode()
    assert "审计日志" in page
    assert f"纸质发票 {invoice.number} 已登记，对应退票申请 {rr.reference}" in page


def test_staff_filter_the_audit_log_by_customer_and_by_actor_type(client, finance, invoice):
    other = issue_invoice(CustomerFactory())
    submit(invoice)
    submit(other)
    client.force_login(finance)
    response = client.get(f"/admin/audit/auditentry/?customer_id={invoice.customer_id}")
    rows = list(response.context["cl"].result_list)
    assert rows
    assert {row.customer_id for row in rows} == {invoice.customer_id}
    response = client.get("/admin/audit/auditentry/?actor_kind__exact=customer")
    assert {row.actor_kind for row in response.context["cl"].result_list} == {"customer"}


def test_the_audit_log_in_the_back_office_is_read_only(client, finance, invoice):
    submit(invoice)
    client.force_login(finance)
    row = entry("return.submitted")
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    response = client.post(f"/admin/audit/auditentry/{row.pk}/change/", {"reason": "x"})
    assert response.status_code == 403
    assert client.post(f"/admin/audit/auditentry/{row.pk}/delete/").status_code == 403
    row.refresh_from_db()
    assert row.reason == "Wrong title"


def test_the_customers_history_never_shows_staff_names_nor_internal_rows(client, invoice):
    rr = submit(invoice, courier="SF", tracking_number="SF1")
    clerk = UserFactory(username="clerk.zhang", is_staff=True)
    log_paper(invoice, clerk, complete=False, notes="Customer sounded angry")
    client.force_login(invoice.customer.user)
    page = client.get(f"/billing/returns/{rr.pk}/").content.decode()
    assert "clerk.zhang" not in page
    assert "Customer sounded angry" not in page  # finance's note on the paper: internal
    assert "logged for return" not in page  # the paper.logged row is staff-only
    assert "(Finance)" in page  # the rejection, by "Finance"
    assert "(You)" in page  # the submission
    assert "The returned paper is incomplete" in page


def test_the_return_and_the_customer_page_link_their_audit_log(client, finance, invoice):
    rr = submit(invoice)
    client.force_login(finance)
    page = client.get(f"/admin/returns/returnrequest/{rr.pk}/change/").content.decode()
    assert f'href="/admin/audit/auditentry/?scope=return:{rr.pk}"' in page
    page = client.get(f"/admin/invoices/customer/{invoice.customer_id}/page/").content.decode()
    assert f'href="/admin/audit/auditentry/?customer_id={invoice.customer_id}"' in page
