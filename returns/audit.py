"""What the audit log needs from returns: the scope "everything about return N" for the back
office, and the calls the post room makes when paper is matched or sent back."""

from django.db.models import Q

from core.audit.actor import Actor
from core.audit.scopes import audit_scope_register
from core.audit.services import audit_record
from returns.models import MailReceipt, ReturnRequest


def _return_scope(return_request_id: int) -> Q:
    from notifications.models import SmsMessage

    rr = ReturnRequest.objects.filter(pk=return_request_id).values(
        "invoice_id", "tax_request_id", "mail_receipt_id"
    )
    row = rr.first()
    if row is None:
        return Q(pk__in=[])
    condition = Q(object_type="returns.returnrequest", object_id=str(return_request_id))
    condition |= Q(object_type="invoices.invoice", object_id=str(row["invoice_id"]))
    if row["tax_request_id"] is not None:
        condition |= Q(object_type="invoices.taxrequest", object_id=str(row["tax_request_id"]))
    receipts = [
        str(pk)
        for pk in MailReceipt.objects.filter(invoice_id=row["invoice_id"]).values_list(
            "pk", flat=True
        )
    ]
    if receipts:
        condition |= Q(object_type="returns.mailreceipt", object_id__in=receipts)
    sms = [
        str(pk)
        for pk in SmsMessage.objects.filter(related_return_id=return_request_id).values_list(
            "pk", flat=True
        )
    ]
    if sms:
        condition |= Q(object_type="notifications.smsmessage", object_id__in=sms)
    return condition


def register_scopes() -> None:
    audit_scope_register("return", _return_scope)


def mail_receipt_matched_record(
    *, receipt: MailReceipt, return_request: ReturnRequest, actor: Actor, reason: str = ""
) -> None:
    """The post room matched logged paper to a return (call inside its transaction)."""
    audit_record(
        actor=actor,
        action="paper.matched",
        obj=receipt,
        customer_id=return_request.invoice.customer_id,
        params={
            "number": receipt.invoice.number,
            "return": return_request.pk,
            "reference": return_request.reference,
        },
        reason=reason,
    )


def mail_receipt_sent_back_record(
    *, receipt: MailReceipt, actor: Actor, tracking_number: str, reason: str = ""
) -> None:
    """The post room sent paper back to the customer (call inside its transaction)."""
    audit_record(
        actor=actor,
        action="paper.sent_back",
        obj=receipt,
        customer_id=receipt.invoice.customer_id,
        params={"number": receipt.invoice.number, "tracking_number": tracking_number},
        reason=reason,
    )
