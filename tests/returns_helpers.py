"""Small helpers for driving the return workflow in tests through its services."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from PIL import Image
from pypdf import PdfWriter

from core.audit.actor import Actor
from returns.services import mail_receipt_log, return_request_submit


def _minimal_pdf() -> bytes:
    """A one-page PDF as a scanner or "print to PDF" writes it: catalog, pages, xref table."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


MINIMAL_PDF = _minimal_pdf()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="JPEG")
    return buffer.getvalue()


def pdf_upload(name: str = "form.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, MINIMAL_PDF, content_type="application/pdf")


def submit(invoice, *, reason="Wrong title", **kwargs):
    return return_request_submit(
        invoice_id=invoice.pk,
        customer_id=invoice.customer_id,
        actor=Actor.for_user(invoice.customer.user),
        reason=reason,
        **kwargs,
    )


def log_paper(invoice, actor, *, complete=True, **kwargs):
    """Finance logs the paper of ``invoice``; ``complete=False`` leaves out the parts, and any
    part can be set on its own (``deduction_form_present=False``, ``undamaged=False``...)."""
    parts = {
        "invoice_form_present": complete,
        "deduction_form_present": complete,
        "undamaged": True,
    } | kwargs
    return mail_receipt_log(
        invoice_code=invoice.code,
        invoice_number=invoice.number,
        actor=Actor.for_user(actor),
        **parts,
    )


def ready_to_process(invoice, finance_user):
    """A return of ``invoice`` with its complete paper logged: in *processing*, its task not run
    (a test's transaction never commits, so the task enqueued on commit waits)."""
    from returns.models import ReturnState

    rr = submit(invoice)
    log_paper(invoice, finance_user)
    rr.refresh_from_db()
    assert rr.state == ReturnState.PROCESSING
    return rr


def assert_returned_exactly_once(invoice, *, outcome: str = "voided", sms_status: str = "sent"):
    """The effects of one return, exactly once: the return completed, the invoice voided or
    reversed, one ledger credit, one success SMS (in ``sms_status``), one completion event."""
    from invoices.models import LedgerEntry, LedgerKind
    from notifications.models import SmsMessage, SmsPurpose
    from returns.models import ReturnRequest, ReturnState

    rr = ReturnRequest.objects.get(invoice=invoice, state=ReturnState.COMPLETED)
    invoice.refresh_from_db()
    assert (rr.outcome, invoice.state) == (outcome, outcome)
    credits = LedgerEntry.objects.filter(invoice=invoice, kind=LedgerKind.INVOICE_RETURNED)
    assert credits.count() == 1
    completed_sms = SmsMessage.objects.filter(
        related_return_id=rr.pk, purpose=SmsPurpose.RETURN_COMPLETED
    )
    assert [sms.status for sms in completed_sms] == [sms_status]
    assert rr.events.filter(to_state=ReturnState.COMPLETED).count() == 1
    return rr


def migrate_returns_to(name: str) -> None:
    """Migrate the test database's ``returns`` app to migration ``name``, back or forward,
    with what depends on it. Inside the test's transaction: PostgreSQL rolls it back after."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()  # the graph as the last migrate left it
    executor.migrate([("returns", name)])
