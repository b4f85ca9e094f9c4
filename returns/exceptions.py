"""Domain errors of the return workflow; messages are shown to customers and staff."""

from django.utils.translation import gettext_lazy as _

from core.exceptions import DomainError


class InvoiceNotEligibleForReturn(DomainError):
    default_message = _("This invoice cannot be returned.")


class ReturnAlreadyOpen(DomainError):
    default_message = _("This invoice already has a return in progress.")


class ReturnReferenceTaken(DomainError):
    default_message = _("Something went wrong while saving your return: please submit it again.")


class ReturnNotAwaitingPaper(DomainError):
    default_message = _("This return is not waiting for paper.")


class MailReceiptAlreadyHandled(DomainError):
    default_message = _("This paper is no longer in the unmatched paper queue.")


class InvalidScan(DomainError):
    default_message = _(
        "This scan is not a return slip, an invoice code and number or an invoice QR code."
    )


class InvalidReturnReason(DomainError):
    default_message = _("Please give a reason of 1 to 500 characters.")


class ReturnNotCancellable(DomainError):
    default_message = _("This return can no longer be cancelled: the paper has been received.")


class ReturnStateConflict(DomainError):
    default_message = _("This return is not in a state that allows this action.")


class InvalidUpload(DomainError):
    default_message = _("Upload a PDF, JPEG or PNG file of at most 10 MB.")


class InvalidMailReceipt(DomainError):
    default_message = _("The mail receipt is incomplete.")


class UnknownInvoice(DomainError):
    default_message = _("No invoice has this code and number.")


class ReturnProcessingError(DomainError):
    """A permanent processing failure: the return goes to *failed* for staff to look at."""

    default_message = _("The return could not be processed.")
