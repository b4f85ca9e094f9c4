"""Domain errors. Each message says what went wrong in words a person can act on."""

from django.utils.translation import gettext_lazy as _

from core.exceptions import DomainError


class InsufficientInvoiceableAmount(DomainError):
    default_message = _("The amount exceeds your invoiceable amount.")


class InvalidTaxpayerId(DomainError):
    default_message = _("The taxpayer ID is not valid.")


class InvalidInvoiceApplication(DomainError):
    default_message = _("The invoice application is incomplete.")


class ApplicationNotPending(DomainError):
    """Only a pending application is issued or cancelled."""

    default_message = _("This application was cancelled by the customer: it cannot be issued.")


class ApplicationAlreadyIssued(ApplicationNotPending):
    default_message = _("An invoice has already been issued for this application.")


class ApplicationNotCancellable(DomainError):
    default_message = _(
        "An invoice has already been issued for this application: return the invoice instead."
    )


class DuplicateInvoiceNumber(DomainError):
    default_message = _("An invoice with this code and number already exists.")


class StatementAlreadySettled(DomainError):
    default_message = _("This statement has already been settled.")


class InvoiceNotReturnable(DomainError):
    default_message = _("This invoice cannot be voided or reversed.")


class TaxOutcomeInvalid(DomainError):
    default_message = _("This is not what the tax system can have printed: check the entry.")


class TaxOutcomeConflict(DomainError):
    default_message = _("The tax system's outcome of this request is already recorded.")


class InvalidNotificationSettings(DomainError):
    default_message = _("Give an email address to be told by email.")
