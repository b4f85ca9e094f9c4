"""Several paper invoices returned at once, mailed in one envelope (issue 12).

Each invoice gets its own return through ``return_request_submit``: R1, R2, R4 and R9 hold per
invoice, and finance logs each one's paper as it does any other. The envelope only groups them
under one reason, courier and tracking number. All or nothing: one invoice refused refuses the
envelope, and the message names it.
"""

from django.db import transaction
from django.utils.translation import gettext as _

from core.audit.actor import Actor
from core.audit.services import audit_record
from core.exceptions import DomainError
from invoices.models import Invoice, InvoiceMedium, InvoiceType, ReversalReason
from returns.exceptions import InvalidReturnReason
from returns.models import ReturnEnvelope, ReturnProblem
from returns.services._common import _clean_reason
from returns.services.submission import return_request_submit

ENVELOPE_MIN = 2
ENVELOPE_MAX = 50


@transaction.atomic
def return_envelope_submit(
    *,
    customer_id: int,
    invoice_ids: list[int],
    actor: Actor,
    reason: str,
    problem: str = ReturnProblem.OTHER,
    reason_code: str = ReversalReason.ISSUING_ERROR,
    courier: str = "",
    tracking_number: str = "",
    none_certified: bool = False,
) -> ReturnEnvelope:
    """Return the customer's paper invoices ``invoice_ids`` in one envelope.

    A special invoice among them needs ``none_certified``: the customer states that the buyer
    certified none of them (a certified one is returned on its own, with the buyer's red-letter
    information form). The invoices are submitted in ascending id order, the one lock order of
    the return services, so two envelopes sharing an invoice queue instead of deadlocking.
    """
    reason = _clean_reason(reason)
    ids = sorted(set(invoice_ids))
    if len(ids) < ENVELOPE_MIN:
        raise InvalidReturnReason(
            _("Choose at least two invoices; return a single invoice with Refund on its row.")
        )
    if len(ids) > ENVELOPE_MAX:
        raise InvalidReturnReason(
            _("At most %(max)d invoices go in one envelope.") % {"max": ENVELOPE_MAX}
        )
    rows = list(
        Invoice.objects.filter(pk__in=ids, customer_id=customer_id).values_list(
            "pk", "medium", "invoice_type", "number"
        )
    )
    kinds = {pk: (medium, invoice_type) for pk, medium, invoice_type, _number in rows}
    numbers = {pk: number for pk, _medium, _type, number in rows}
    for pk, (medium, _type) in kinds.items():
        if medium == InvoiceMedium.DIGITAL:
            raise InvalidReturnReason(
                _(
                    "Invoice %(number)s is digital: it is not mailed. Return it with Refund on "
                    "its row."
                )
                % {"number": numbers[pk]}
            )
    special = {
        pk for pk, (_medium, invoice_type) in kinds.items() if invoice_type == InvoiceType.SPECIAL
    }
    if special and not none_certified:
        raise InvalidReturnReason(
            _(
                "Please confirm that the buyer certified none of the VAT special invoices; a "
                "certified one is returned on its own, with the buyer's red-letter form."
            )
        )
    envelope = ReturnEnvelope.objects.create(
        customer_id=customer_id,
        courier=courier.strip()[:64],
        tracking_number=tracking_number.strip()[:64],
    )
    for pk in ids:
        try:
            return_request_submit(
                invoice_id=pk,
                customer_id=customer_id,
                actor=actor,
                reason=reason,
                problem=problem,
                reason_code=reason_code,
                certified=False if pk in special else None,
                courier=envelope.courier,
                tracking_number=envelope.tracking_number,
                envelope_id=envelope.pk,
            )
        except DomainError as exc:
            if pk not in numbers:
                raise  # another customer's invoice: "No such invoice", as for Refund (R12)
            raise type(exc)(
                _("Invoice %(number)s: %(error)s") % {"number": numbers[pk], "error": exc}
            ) from exc
    audit_record(
        actor=actor,
        action="return.envelope_submitted",
        obj=envelope,
        customer_id=customer_id,
        params={"count": len(ids), "tracking_number": envelope.tracking_number},
        reason=reason,
    )
    return envelope
