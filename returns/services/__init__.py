"""Every write of the return workflow (R1-R9, R11), one module per concern:

- ``submission``: the customer submits, cancels, says how the paper was sent; finance rejects.
- ``envelope``: several paper invoices a customer returns at once, one return each, in one
  envelope.
- ``paper``: finance logs received paper (mail receipts, one envelope at a time) and it is
  matched to its return; unmatched paper is matched by hand or sent back to the customer.
- ``red_letter_forms``: the buyer's red-letter information form, uploaded and reviewed.
- ``processing``: the request to the tax system, its outcome recorded or corrected, failures,
  retries.
- ``sweeper``: tasks published again for returns that may have lost theirs.
- ``overdue``: paper that does not come: reminders at 14 and 30 days, closed at 60.
- ``_common``: the audit trail, the transition, the lock order, SMS queueing (not public).

Each transition locks the return row, re-checks the rule (``returns.rules``), raises a domain
error (or returns quietly when the work is already done), saves with ``update_fields`` and
writes an audit event. Rows are always locked in the same order: invoice, then return request,
then red-letter form, so concurrent actions on one invoice queue up instead of deadlocking.
Side effects (the processing task, SMS) leave only on commit.

Import the public names from here: ``from returns.services import return_request_submit``.
"""

from returns.services._common import Actor, return_event_record
from returns.services.envelope import return_envelope_submit
from returns.services.overdue import return_request_chase_paper, returns_chase_paper
from returns.services.paper import (
    EnvelopeItem,
    MailReceiptOutcome,
    MailReceiptResult,
    mail_envelope_log,
    mail_receipt_log,
    mail_receipt_match,
    mail_receipt_send_back,
)
from returns.services.processing import (
    return_request_await_buyer,
    return_request_buyer_declined,
    return_request_correct_outcome,
    return_request_mark_failed,
    return_request_process,
    return_request_record_outcome,
    return_request_retry,
    return_request_simulate_buyer,
    return_request_tax_refused,
    return_tax_poll,
    return_tax_submit,
)
from returns.services.red_letter_forms import red_letter_form_review, red_letter_form_upload
from returns.services.submission import (
    return_rejection_check,
    return_request_cancel,
    return_request_reject,
    return_request_submit,
    return_request_update_tracking,
)
from returns.services.sweeper import returns_repoll_tax, returns_requeue_stuck

__all__ = [
    "Actor",
    "EnvelopeItem",
    "MailReceiptOutcome",
    "MailReceiptResult",
    "mail_envelope_log",
    "mail_receipt_log",
    "mail_receipt_match",
    "mail_receipt_send_back",
    "red_letter_form_review",
    "red_letter_form_upload",
    "return_envelope_submit",
    "return_event_record",
    "return_rejection_check",
    "return_request_await_buyer",
    "return_request_buyer_declined",
    "return_request_cancel",
    "return_request_chase_paper",
    "return_request_correct_outcome",
    "return_request_mark_failed",
    "return_request_process",
    "return_request_record_outcome",
    "return_request_reject",
    "return_request_retry",
    "return_request_simulate_buyer",
    "return_request_submit",
    "return_request_tax_refused",
    "return_request_update_tracking",
    "return_tax_poll",
    "return_tax_submit",
    "returns_chase_paper",
    "returns_repoll_tax",
    "returns_requeue_stuck",
]
