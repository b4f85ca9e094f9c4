"""The return workflow, rule by rule: R1-R5, R8, R9, R11, R12 at the service level."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import translation

from core.audit.actor import Actor
from invoices.models import Invoice, InvoiceState, LedgerEntry, LedgerKind
from notifications import backends
from notifications.models import SmsMessage, SmsPurpose
from returns.exceptions import (
    InvalidReturnReason,
    InvalidUpload,
    InvoiceNotEligibleForReturn,
    ReturnAlreadyOpen,
    ReturnNotCancellable,
    ReturnStateConflict,
    UnknownInvoice,
)
from returns.models import FormReviewState, MailReceipt, RedLetterForm, ReturnRequest, ReturnState
from returns.services import (
    MailReceiptOutcome,
    red_letter_form_review,
    red_letter_form_upload,
    return_request_cancel,
    return_request_process,
    return_request_retry,
    return_tax_submit,
)
from tests.factories import (
    CustomerFactory,
    UserFactory,
    issue_invoice,
    marketplace_invoice,
    take_return_credit,
)
from tests.returns_helpers import jpeg_bytes, log_paper, pdf_upload, png_bytes, submit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _outbox():
    backends.outbox.clear()
    yield
    backends.outbox.clear()


def reviewer():
    return UserFactory(username="reviewer", is_staff=True)


# R1 ---------------------------------------------------------------------------------------


def test_r1_an_issued_provider_invoice_can_be_returned(invoice):
    assert submit(invoice).state == ReturnState.SUBMITTED


def test_r1_a_cloud_market_invoice_cannot_be_returned_and_says_who_to_contact(customer):
    market = marketplace_invoice(customer, issuer_name="Shanghai Example SaaS Ltd.")
    with pytest.raises(
        InvoiceNotEligibleForReturn,
        match=r"Issued by Shanghai Example SaaS Ltd\.: contact the service provider",
    ):
        submit(market)
    assert not ReturnRequest.objects.exists()


@pytest.mark.parametrize("state", [InvoiceState.VOIDED, InvoiceState.REVERSED])
def test_r1_a_voided_or_reversed_invoice_cannot_be_returned(invoice, state):
    Invoice.objects.filter(pk=invoice.pk).update(state=state)
    with pytest.raises(InvoiceNotEligibleForReturn, match="cannot be returned"):
        submit(invoice)


# R2 ---------------------------------------------------------------------------------------


def test_r2_a_second_submit_for_the_same_invoice_is_refused(invoice):
    submit(invoice)
    with pytest.raises(ReturnAlreadyOpen):
        submit(invoice, reason="double click")
    assert ReturnRequest.objects.filter(invoice=invoice).count() == 1


def test_r2_one_open_return_per_invoice_is_enforced_by_the_database(invoice):
    first = submit(invoice)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.create(
            invoice=invoice,
            state=ReturnState.SUBMITTED,
            reason="again",
            submitted_by=first.submitted_by,
        )


@pytest.mark.parametrize("closed", [ReturnState.REJECTED, ReturnState.CANCELLED])
def test_r2_a_new_return_after_a_rejected_or_cancelled_one_is_allowed(invoice, closed):
    first = submit(invoice)
    ReturnRequest.objects.filter(pk=first.pk).update(state=closed, rejection_reason="x")
    assert submit(invoice, reason="fixed").state == ReturnState.SUBMITTED


# R3 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_r3_a_reason_is_required(invoice, reason):
    with pytest.raises(InvalidReturnReason):
        submit(invoice, reason=reason)
    assert not ReturnRequest.objects.exists()


def test_r3_a_reason_of_501_characters_is_refused_and_500_accepted(invoice):
    with pytest.raises(InvalidReturnReason, match="501"):
        submit(invoice, reason="x" * 501)
    assert len(submit(invoice, reason="  " + "x" * 500 + "  ").reason) == 500


def test_r3_the_reason_is_trimmed(invoice):
    assert submit(invoice, reason="  wrong title \n").reason == "wrong title"


def test_r3_an_empty_reason_is_refused_by_the_database(invoice):
    rr = submit(invoice)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.filter(pk=rr.pk).update(reason="")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("problem", "Choose what was wrong with the invoice."),
        ("reason_code", "Choose the reason code for the tax system."),
    ],
)
def test_r3_a_problem_or_reason_code_outside_the_lists_is_refused(invoice, field, message):
    with pytest.raises(InvalidReturnReason, match=message):
        submit(invoice, **{field: "no-such-value"})
    assert not ReturnRequest.objects.exists()
    assert submit(invoice, problem="amount", reason_code="sales_return").reason_code == (
        "sales_return"
    )


def test_r3_a_special_invoice_must_say_whether_it_was_certified(special_invoice):
    with pytest.raises(InvalidReturnReason, match="certified"):
        submit(special_invoice)
    assert submit(special_invoice, certified=False).certified is False


def test_r3_an_ordinary_invoice_is_never_certified(invoice):
    assert submit(invoice, certified=True).certified is False


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(None, "application/pdf"), (png_bytes(), "image/png"), (jpeg_bytes(), "image/jpeg")],
)
def test_r3_certified_accepts_a_pdf_jpeg_or_png_form_sniffed_from_content(
    special_invoice, data, content_type
):
    upload = pdf_upload("scan.bin") if data is None else SimpleUploadedFile("scan.bin", data)
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=upload,
        red_letter_form_number="4403202612000001",
    )
    form = RedLetterForm.objects.get(return_request=rr)
    assert form.content_type == content_type
    assert form.review_state == FormReviewState.PENDING
    assert form.file.read().startswith((data or b"%PDF")[:4])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"MZ\x90\x00\x03" + b"\x00" * 100, "not a PDF, JPEG or PNG"),  # a .exe renamed .pdf
        (b"", "empty"),
        (b"GIF89a" + b"\x00" * 50, "not a PDF, JPEG or PNG"),
        (b"%PDF-1.4 truncated", "truncated"),
    ],
)
def test_r3_a_bad_form_file_is_refused_and_nothing_is_saved(special_invoice, content, message):
    upload = SimpleUploadedFile("form.pdf", content, content_type="application/pdf")
    with pytest.raises(InvalidUpload, match=message):
        submit(
            special_invoice,
            certified=True,
            red_letter_form=upload,
            red_letter_form_number="4403202612000001",
        )
    assert not ReturnRequest.objects.exists()


def test_r3_a_form_over_10_mb_is_refused(special_invoice, settings):
    data = b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024) + b"\n%%EOF\n"
    upload = SimpleUploadedFile("big.pdf", data, content_type="application/pdf")
    with pytest.raises(InvalidUpload, match="larger than 10 MB"):
        submit(
            special_invoice,
            certified=True,
            red_letter_form=upload,
            red_letter_form_number="4403202612000001",
        )
    assert not RedLetterForm.objects.exists()


def test_r3_a_form_needs_its_form_number(special_invoice):
    with pytest.raises(InvalidUpload, match="form number"):
        submit(
            special_invoice,
            certified=True,
            red_letter_form=pdf_upload(),
            red_letter_form_number=" ",
        )


def test_r3_certified_return_is_not_processed_without_an_approved_form(
    special_invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = submit(special_invoice, certified=True)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(special_invoice, finance_user)
    rr.refresh_from_db()
    assert rr.state == ReturnState.RECEIVED  # waits for the form
    with django_capture_on_commit_callbacks(execute=True):
        form = red_letter_form_upload(
            return_request_id=rr.pk,
            actor=Actor.for_user(rr.submitted_by),
            upload=pdf_upload(),
            form_number="4403202612000001",
        )
    rr.refresh_from_db()
    assert rr.state == ReturnState.RECEIVED  # uploaded, not yet approved
    with django_capture_on_commit_callbacks(execute=True):
        red_letter_form_review(
            red_letter_form_id=form.pk, reviewer=Actor.for_user(reviewer()), approve=True
        )
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    assert rr.outcome == "reversed"
    assert special_invoice.red_letter_invoice.red_letter_form_number == "4403202612000001"


def test_r3_one_current_form_per_return_is_enforced_by_the_database(special_invoice):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        RedLetterForm.objects.create(
            return_request=rr,
            content_type="application/pdf",
            size=1,
            sha256="0" * 64,
            form_number="4403202612000012",
            uploaded_by=rr.submitted_by,
        )


def test_r3_a_replaced_form_leaves_the_old_one_marked_replaced(special_invoice):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    red_letter_form_upload(
        return_request_id=rr.pk,
        actor=Actor.for_user(rr.submitted_by),
        upload=SimpleUploadedFile("f.png", png_bytes()),
        form_number="4403202612000012",
    )
    states = dict(RedLetterForm.objects.values_list("form_number", "review_state"))
    assert states == {
        "4403202612000011": FormReviewState.REPLACED,
        "4403202612000012": FormReviewState.PENDING,
    }


def test_r3_a_replaced_scan_leaves_the_disk_once_the_replacement_is_committed(
    special_invoice, django_capture_on_commit_callbacks
):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    old = rr.red_letter_forms.get()
    assert old.file.storage.exists(old.file.name)
    with django_capture_on_commit_callbacks(execute=True):
        new = red_letter_form_upload(
            return_request_id=rr.pk,
            actor=Actor.for_user(rr.submitted_by),
            upload=SimpleUploadedFile("f.png", png_bytes()),
            form_number="4403202612000012",
        )
    assert not old.file.storage.exists(old.file.name)
    assert new.file.storage.exists(new.file.name)
    assert RedLetterForm.objects.filter(pk=old.pk, review_state="replaced").exists()


def test_r3_the_same_scan_uploaded_again_is_kept(
    special_invoice, django_capture_on_commit_callbacks
):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    with django_capture_on_commit_callbacks(execute=True):
        again = red_letter_form_upload(
            return_request_id=rr.pk,
            actor=Actor.for_user(rr.submitted_by),
            upload=pdf_upload(),
            form_number="4403202612000012",
        )
    assert again.file.storage.exists(again.file.name)


def test_r3_a_rejected_form_must_have_a_reason(special_invoice):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    form = rr.red_letter_forms.get()
    with pytest.raises(InvalidReturnReason):
        red_letter_form_review(
            red_letter_form_id=form.pk, reviewer=Actor.for_user(reviewer()), approve=False
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        RedLetterForm.objects.filter(pk=form.pk).update(review_state="rejected", review_reason="")


def test_r3_rejecting_the_form_before_the_paper_arrives_lets_the_customer_upload_again(
    special_invoice,
):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    red_letter_form_review(
        red_letter_form_id=rr.red_letter_forms.get().pk,
        reviewer=Actor.for_user(reviewer()),
        approve=False,
        reason="Blurred scan",
    )
    rr.refresh_from_db()
    assert rr.state == ReturnState.SUBMITTED
    assert red_letter_form_upload(
        return_request_id=rr.pk,
        actor=Actor.for_user(rr.submitted_by),
        upload=pdf_upload(),
        form_number="4403202612000011",
    )


def test_r3_rejecting_the_form_once_the_paper_is_in_rejects_the_return(
    special_invoice, finance_user
):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    log_paper(special_invoice, finance_user)
    red_letter_form_review(
        red_letter_form_id=rr.red_letter_forms.get().pk,
        reviewer=Actor.for_user(reviewer()),
        approve=False,
        reason="Wrong form number",
    )
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    assert "Wrong form number" in rr.rejection_reason


def test_r3_after_a_form_rejection_a_new_return_reuses_the_complete_paper(
    special_invoice, finance_user, django_capture_on_commit_callbacks
):
    first = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    log_paper(special_invoice, finance_user)
    red_letter_form_review(
        red_letter_form_id=first.red_letter_forms.get().pk,
        reviewer=Actor.for_user(reviewer()),
        approve=False,
        reason="Wrong form number",
    )
    second = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000012",
    )
    first.refresh_from_db()
    assert second.state == ReturnState.RECEIVED
    assert second.mail_receipt_id == first.mail_receipt_id is not None


# R4 ---------------------------------------------------------------------------------------


def test_r4_application_then_paper_processes_the_return(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = submit(invoice)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = log_paper(invoice, finance_user)
    assert result.outcome == MailReceiptOutcome.MATCHED
    assert len(callbacks) >= 1
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED


def test_r4_paper_then_application_processes_the_return(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    result = log_paper(invoice, finance_user)
    assert result.outcome == MailReceiptOutcome.UNMATCHED
    with django_capture_on_commit_callbacks(execute=True):
        rr = submit(invoice)
    rr.refresh_from_db()
    assert rr.mail_receipt_id == result.receipt.pk
    assert rr.state == ReturnState.COMPLETED


def test_r4_nothing_is_processed_with_only_the_application(
    invoice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        rr = submit(invoice)
    assert callbacks == []
    rr.refresh_from_db()
    assert rr.state == ReturnState.SUBMITTED
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.ISSUED


def test_r4_nothing_is_processed_with_only_the_paper(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        log_paper(invoice, finance_user)
    assert callbacks == []
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.ISSUED


def test_r4_the_processing_task_is_enqueued_only_on_commit(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        log_paper(invoice, finance_user)
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.ISSUED  # nothing ran inside the transaction
    assert len(callbacks) >= 1


def test_r4_logging_the_same_envelope_twice_does_nothing_the_second_time(invoice, finance_user):
    submit(invoice)
    first = log_paper(invoice, finance_user)
    second = log_paper(invoice, finance_user)
    assert second.outcome == MailReceiptOutcome.DUPLICATE
    assert second.receipt.pk == first.receipt.pk
    assert MailReceipt.objects.count() == 1


def test_r4_logging_unmatched_paper_twice_does_nothing_the_second_time(invoice, finance_user):
    log_paper(invoice, finance_user)
    assert log_paper(invoice, finance_user).outcome == MailReceiptOutcome.DUPLICATE
    assert MailReceipt.objects.count() == 1


def test_r4_an_unknown_invoice_number_saves_nothing(invoice, finance_user):
    from returns.services import mail_receipt_log

    with pytest.raises(UnknownInvoice, match="99999999"):
        mail_receipt_log(
            invoice_code=invoice.code,
            invoice_number="99999999",
            actor=Actor.for_user(finance_user),
            invoice_form_present=True,
            deduction_form_present=True,
            undamaged=True,
        )
    assert not MailReceipt.objects.exists()


def test_r4_one_open_return_per_mail_receipt_is_enforced_by_the_database(invoice, finance_user):
    rr = submit(invoice)
    receipt = log_paper(invoice, finance_user).receipt
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.create(
            invoice=issue_invoice(invoice.customer),
            reason="x",
            submitted_by=rr.submitted_by,
            mail_receipt=receipt,
        )


def test_r4_a_return_past_submitted_must_have_paper_by_the_database(invoice):
    rr = submit(invoice)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.filter(pk=rr.pk).update(state=ReturnState.RECEIVED)


# R5 ---------------------------------------------------------------------------------------


def test_r5_incomplete_paper_rejects_the_return_with_a_reason_the_customer_sees(
    special_invoice, finance_user
):
    rr = submit(special_invoice, certified=False)
    log_paper(special_invoice, finance_user, deduction_form_present=False)
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    assert "deduction form" in rr.rejection_reason


def test_r5_an_ordinary_invoice_needs_only_the_invoice_form(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(
            invoice,
            finance_user,
            deduction_form_present=False,
            courier="SF Express",
            tracking_number="SF1234567890",
        )
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED
    assert rr.mail_receipt.tracking_number == "SF1234567890"


def test_r5_damaged_paper_rejects_the_return(invoice, finance_user):
    rr = submit(invoice)
    log_paper(invoice, finance_user, undamaged=False)
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    assert "undamaged" in rr.rejection_reason


def test_r5_after_a_rejection_the_customer_may_submit_a_new_return(invoice, finance_user):
    submit(invoice)
    log_paper(invoice, finance_user, complete=False)
    new = submit(invoice, reason="Sending the complete paper again")
    assert new.state == ReturnState.SUBMITTED  # the incomplete paper is not matched again


def test_r5_a_rejected_return_must_carry_its_reason_by_the_database(invoice):
    rr = submit(invoice)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.filter(pk=rr.pk).update(state=ReturnState.REJECTED)


# R6/R7 through the workflow ---------------------------------------------------------------


def test_r6_r7_processing_voids_this_months_invoice_and_credits_the_ledger_once(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        rr = log_paper(invoice, finance_user).return_request
    rr.refresh_from_db()
    invoice.refresh_from_db()
    assert (rr.state, rr.outcome, invoice.state) == ("completed", "voided", "voided")
    assert (
        LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED).count() == 1
    )


def test_r6_processing_reverses_last_months_invoice(
    customer, finance_user, django_capture_on_commit_callbacks
):
    old = issue_invoice(customer, issued_at=dt.datetime(2026, 9, 15, tzinfo=dt.UTC))
    submit(old)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(old, finance_user)
    old.refresh_from_db()
    assert old.state == InvoiceState.REVERSED
    assert old.red_letter_invoice.amount == -old.amount


def test_r6_r7_processing_twice_changes_nothing_the_second_time(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        rr = log_paper(invoice, finance_user).return_request
    again = return_request_process(return_request_id=rr.pk)
    assert again.state == ReturnState.COMPLETED
    assert LedgerEntry.objects.filter(kind=LedgerKind.INVOICE_RETURNED).count() == 1
    assert SmsMessage.objects.filter(purpose=SmsPurpose.RETURN_COMPLETED).count() == 1


def test_completed_return_must_have_an_outcome_by_the_database(invoice):
    rr = submit(invoice)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnRequest.objects.filter(pk=rr.pk).update(state=ReturnState.COMPLETED, outcome="")


def test_a_return_whose_invoice_was_voided_elsewhere_fails_visibly_and_can_be_retried(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=False):
        rr = log_paper(invoice, finance_user).return_request
    Invoice.objects.filter(pk=invoice.pk).update(state=InvoiceState.VOIDED)
    rr = return_request_process(return_request_id=rr.pk)
    assert rr.state == ReturnState.FAILED
    assert "voided" in rr.error
    Invoice.objects.filter(pk=invoice.pk).update(state=InvoiceState.ISSUED)
    with django_capture_on_commit_callbacks(execute=True):
        return_request_retry(return_request_id=rr.pk, actor=Actor.for_user(finance_user))
    rr.refresh_from_db()
    assert rr.state == ReturnState.COMPLETED


# R8 ---------------------------------------------------------------------------------------


def test_r8_one_sms_tells_the_customer_after_the_void_commits(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    done = SmsMessage.objects.get(purpose=SmsPurpose.RETURN_COMPLETED)
    assert done.to == invoice.customer.mobile
    assert invoice.number in done.body
    assert "apply" in done.body
    assert done.status == "sent"
    assert [m["to"] for m in backends.outbox].count(invoice.customer.mobile) >= 1
    assert any(invoice.number in m["body"] and "apply" in m["body"] for m in backends.outbox)


def test_r8_the_sms_is_sent_in_the_customers_language(
    customer, finance_user, django_capture_on_commit_callbacks
):
    customer.language = "zh-hans"
    customer.save(update_fields=["language"])
    invoice = issue_invoice(customer)
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    body = SmsMessage.objects.get(purpose=SmsPurpose.RETURN_COMPLETED).body
    assert "发票" in body


def test_r8_an_sms_failure_never_undoes_the_void_or_the_credit(
    invoice, finance_user, django_capture_on_commit_callbacks, monkeypatch
):
    from notifications.exceptions import SmsPermanentError

    def refuse(self, **kwargs):
        raise SmsPermanentError("invalid number", code=21211)

    monkeypatch.setattr(backends.InMemorySmsBackend, "send", refuse)
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.VOIDED
    assert (
        LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED).count() == 1
    )
    done = SmsMessage.objects.get(purpose=SmsPurpose.RETURN_COMPLETED)
    assert done.status == "failed"
    assert done.error_code == "21211"


def test_r8_no_sms_is_queued_when_recording_the_outcome_rolls_back(invoice, finance_user):
    submit(invoice)
    rr = log_paper(invoice, finance_user).return_request
    return_request_process(return_request_id=rr.pk)
    take_return_credit(invoice)  # the database refuses the credit of the outcome

    with pytest.raises(IntegrityError, match="ledger_one_credit_per_returned_invoice"):
        return_tax_submit(return_request_id=rr.pk)
    assert not SmsMessage.objects.filter(purpose=SmsPurpose.RETURN_COMPLETED).exists()
    rr.refresh_from_db()
    invoice.refresh_from_db()
    assert (rr.state, invoice.state) == (ReturnState.AWAITING_TAX, InvoiceState.ISSUED)


def test_r8_a_return_that_completes_at_once_sends_only_the_completed_sms(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    submit(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    purposes = list(SmsMessage.objects.values_list("purpose", flat=True))
    assert purposes == [SmsPurpose.RETURN_COMPLETED]


def test_r8_paper_received_is_texted_when_the_return_waits_for_the_form(
    special_invoice, finance_user, django_capture_on_commit_callbacks
):
    submit(special_invoice, certified=True)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(special_invoice, finance_user)
    received = SmsMessage.objects.get(purpose=SmsPurpose.RETURN_RECEIVED)
    assert special_invoice.number in received.body
    assert not SmsMessage.objects.filter(purpose=SmsPurpose.RETURN_COMPLETED).exists()


# R9 ---------------------------------------------------------------------------------------


def test_r9_the_customer_may_cancel_before_the_paper_is_logged(invoice):
    rr = submit(invoice)
    assert (
        return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(rr.submitted_by)).state
        == "cancelled"
    )


def test_r9_cancelling_twice_is_a_no_op(invoice):
    rr = submit(invoice)
    return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(rr.submitted_by))
    return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(rr.submitted_by))
    assert rr.events.filter(to_state=ReturnState.CANCELLED).count() == 1


def test_r9_the_customer_cannot_cancel_once_the_paper_is_logged(invoice, finance_user):
    rr = submit(invoice)
    log_paper(invoice, finance_user)
    with pytest.raises(ReturnNotCancellable, match="paper has been received"):
        return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(rr.submitted_by))


# R11 --------------------------------------------------------------------------------------


def test_r11_every_state_change_is_recorded_with_who_when_from_to_and_why(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    rr = submit(invoice, reason="Wrong title")
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    events = list(rr.events.order_by("id"))
    assert [(e.from_state, e.to_state) for e in events] == [
        ("", "submitted"),
        ("submitted", "received"),
        ("received", "processing"),
        ("processing", "awaiting_tax"),
        ("awaiting_tax", "completed"),
    ]
    assert events[0].actor == rr.submitted_by
    assert events[0].note == "Wrong title"
    assert events[1].actor == finance_user
    assert events[3].actor is None
    rr.refresh_from_db()
    assert rr.tax_request.serial in events[3].text
    assert events[4].actor is None  # the sandbox answered: the system recorded it
    assert events[4].text == f"Voided in the tax system on {rr.tax_request.voided_on:%Y-%m-%d}"
    assert all(e.created_at is not None for e in events)


def test_r11_a_cancellation_is_recorded(invoice):
    rr = submit(invoice)
    return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(rr.submitted_by))
    last = rr.events.order_by("id").last()
    assert (last.from_state, last.to_state, last.actor) == (
        "submitted",
        "cancelled",
        rr.submitted_by,
    )


# R12 --------------------------------------------------------------------------------------


def test_r12_a_customer_cannot_return_another_customers_invoice(invoice):
    stranger = CustomerFactory()
    from returns.services import return_request_submit

    with pytest.raises(InvoiceNotEligibleForReturn, match="No such invoice"):
        return_request_submit(
            invoice_id=invoice.pk,
            customer_id=stranger.pk,
            actor=Actor.for_user(stranger.user),
            reason="mine now",
        )
    assert not ReturnRequest.objects.exists()


def test_r12_uploaded_forms_are_not_stored_under_a_public_media_url(special_invoice):
    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload("../../etc.pdf"),
        red_letter_form_number="4403202612000011",
    )
    form = rr.red_letter_forms.get()
    assert "etc" not in form.file.name
    assert form.file.name.startswith("red-letter-forms/")
    with pytest.raises(ValueError, match="served only through an authorised view"):
        form.file.url  # noqa: B018 (the attribute access is what is tested)


def test_state_conflicts_are_reported_in_words(invoice):
    rr = submit(invoice)
    with pytest.raises(ReturnStateConflict, match="failed"):
        return_request_retry(return_request_id=rr.pk, actor=Actor.for_user(rr.submitted_by))


def test_r11_notes_the_system_writes_are_in_the_readers_language(
    customer, finance_user, django_capture_on_commit_callbacks
):
    # Issue 12: stored as message keys, worded when read (it was the customer's saved language
    # at write time). Whatever the customer's saved language, a Chinese reader reads Chinese.
    customer.language = "en"
    customer.save(update_fields=["language"])
    invoice = issue_invoice(customer)
    rr = submit(invoice, reason="Wrong title")
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)
    events = list(rr.events.order_by("id"))
    with translation.override("zh-hans"):
        notes = [event.text for event in events]
    assert notes[0] == "Wrong title"  # typed by the customer: kept as typed
    assert notes[1].startswith("纸票于")
    tax_request = ReturnRequest.objects.get(pk=rr.pk).tax_request
    assert notes[2:] == [
        "待处理",
        f"已提交税务系统：作废（请求号 {tax_request.serial}）",
        f"已于 {tax_request.voided_on:%Y-%m-%d} 在税务系统作废",
    ]


def test_r11_the_paper_date_in_the_timeline_is_the_shanghai_date(invoice, finance_user):
    submit(invoice)
    # 17:00 UTC on the 24th is already 01:00 on the 25th in Shanghai.
    log_paper(invoice, finance_user, received_at=dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC))
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert rr.events.get(to_state=ReturnState.RECEIVED).text == "Paper received on 2026-11-25"


def test_r11_paper_logged_first_is_recorded_as_received_by_finance_not_the_customer(
    invoice, finance_user
):
    log_paper(invoice, finance_user)
    rr = submit(invoice)
    events = {e.to_state: e.actor for e in rr.events.all()}
    assert events[ReturnState.SUBMITTED] == rr.submitted_by
    assert events[ReturnState.RECEIVED] == finance_user


def test_r3_a_decompression_bomb_png_is_refused_without_decoding_it(special_invoice):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    # A valid PNG header declaring 40000 x 40000 pixels, in well under a kilobyte.
    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    upload = SimpleUploadedFile("scan.png", bomb, content_type="image/png")
    with pytest.raises(InvalidUpload, match="too large in pixels"):
        submit(
            special_invoice,
            certified=True,
            red_letter_form=upload,
            red_letter_form_number="4403202612000001",
        )
    assert not ReturnRequest.objects.exists()


def test_r4_corrected_complete_paper_logged_before_the_return_is_saved_and_matched(
    invoice, finance_user, django_capture_on_commit_callbacks
):
    first = log_paper(invoice, finance_user, complete=False)
    second = log_paper(invoice, finance_user)  # the customer sent the missing part
    assert (first.outcome, second.outcome) == (MailReceiptOutcome.UNMATCHED,) * 2
    assert MailReceipt.objects.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        rr = submit(invoice)
    rr.refresh_from_db()
    assert rr.mail_receipt_id == second.receipt.pk
    assert rr.state == ReturnState.COMPLETED


def test_r4_the_same_incomplete_envelope_logged_twice_is_a_duplicate(invoice, finance_user):
    log_paper(invoice, finance_user, complete=False)
    assert log_paper(invoice, finance_user, complete=False).outcome == MailReceiptOutcome.DUPLICATE
    assert MailReceipt.objects.count() == 1


@pytest.mark.parametrize("close", ["cancel", "reject"])
def test_r3_closing_a_return_withdraws_its_unreviewed_form_from_the_queue(
    special_invoice, finance_user, close
):
    from returns.services import return_request_reject

    rr = submit(
        special_invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403202612000011",
    )
    if close == "cancel":
        return_request_cancel(return_request_id=rr.pk, actor=Actor.for_user(rr.submitted_by))
    else:
        return_request_reject(
            return_request_id=rr.pk, actor=Actor.for_user(finance_user), reason="Duplicate"
        )
    form = rr.red_letter_forms.get()
    assert form.review_state == FormReviewState.WITHDRAWN
    with pytest.raises(ReturnStateConflict, match="can no longer be reviewed"):
        red_letter_form_review(
            red_letter_form_id=form.pk,
            reviewer=Actor.for_user(reviewer()),
            approve=False,
            reason="Blurred",
        )
    assert not SmsMessage.objects.filter(purpose=SmsPurpose.FORM_REJECTED).exists()


def test_a_return_is_named_by_its_own_number(invoice):
    rr = submit(invoice)
    assert str(rr) == f"Return #{rr.pk}"
