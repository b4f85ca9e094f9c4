"""Every write to invoices and the invoiceable-amount ledger.

One function per action, keyword-only and typed. Functions that change money lock the
customer row first (R10) so that parallel requests are serialised per customer.
"""

import datetime as dt
import logging
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.audit.actor import Actor
from core.audit.services import audit_record
from core.enqueue import enqueue_on_commit
from invoices.exceptions import (
    ApplicationAlreadyIssued,
    ApplicationNotCancellable,
    ApplicationNotPending,
    DuplicateInvoiceNumber,
    InsufficientInvoiceableAmount,
    InvalidInvoiceApplication,
    InvalidNotificationSettings,
    StatementAlreadySettled,
)
from invoices.models import (
    CENT,
    ApplicationState,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceApplication,
    InvoiceMedium,
    InvoiceProfile,
    InvoiceType,
    Issuer,
    LedgerEntry,
    LedgerKind,
    NotifyBy,
    Statement,
)
from invoices.rules import invoice_application_can_be_cancelled, invoice_application_can_be_issued
from invoices.selectors import invoiceable_amount
from invoices.tax import breakdown_from_total
from invoices.taxpayer import validate_taxpayer_id
from invoices.taxsystem.interface import get_tax_system

logger = logging.getLogger(__name__)

# The largest amount an invoice field holds (max_digits=14, two decimals).
MAX_AMOUNT = Decimal("999999999999.99")
# What a customer types: ASCII digits, an optional decimal point and at most two decimals
# (more are refused with their own message below); no exponent, sign, separators or
# full-width digits.
_AMOUNT_TEXT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,6})?", re.ASCII)


def money(value: Decimal | str | int) -> Decimal:
    """Parse an amount: positive, at most two decimal places, at most ``MAX_AMOUNT``.

    Never rounds silently; every bad amount raises ``InvalidInvoiceApplication`` with a message.
    """
    if isinstance(value, str):
        text = value.strip()
        if not _AMOUNT_TEXT.fullmatch(text):
            raise InvalidInvoiceApplication(
                _("Enter the amount in digits (0-9) with at most two decimals, e.g. 1280.50.")
            )
        amount = Decimal(text)
    elif isinstance(value, Decimal | int) and not isinstance(value, bool):
        amount = Decimal(value)
    else:
        raise InvalidInvoiceApplication(_("The amount is not a number."))
    if not amount.is_finite():
        raise InvalidInvoiceApplication(_("The amount is not a number."))
    if amount <= 0:
        raise InvalidInvoiceApplication(_("The amount must be greater than zero."))
    if amount > MAX_AMOUNT:
        raise InvalidInvoiceApplication(
            _("The amount is too large: at most %(max)s.") % {"max": f"{MAX_AMOUNT:,}"}
        )
    if amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise InvalidInvoiceApplication(_("An amount has at most two decimal places (fen)."))
    return amount.quantize(CENT)


def _customer_lock(customer_id: int) -> Customer:
    return Customer.objects.select_for_update().get(pk=customer_id)


@transaction.atomic
def statement_settle(
    *,
    statement_id: int,
    actor: Actor = Actor.system("invoices.services.statement_settle"),
) -> LedgerEntry:
    """A paid statement becomes invoiceable: credit its amount once."""
    statement = Statement.objects.select_for_update().get(pk=statement_id)
    _customer_lock(statement.customer_id)
    if statement.settled_at is not None:
        raise StatementAlreadySettled()
    statement.settled_at = timezone.now()
    statement.save(update_fields=["settled_at"])
    entry = LedgerEntry.objects.create(
        customer_id=statement.customer_id,
        kind=LedgerKind.STATEMENT_SETTLED,
        amount=statement.amount,
        statement=statement,
    )
    audit_record(
        actor=actor,
        action="statement.settled",
        obj=statement,
        customer_id=statement.customer_id,
        params={"amount": statement.amount},
    )
    return entry


@transaction.atomic
def invoice_application_create(
    *,
    customer_id: int,
    invoice_type: str,
    title: str,
    amount: Decimal | str,
    mailing_recipient: str = "",
    mailing_phone: str = "",
    mailing_address: str = "",
    mailing_postal_code: str = "",
    taxpayer_id: str = "",
    registered_address: str = "",
    registered_phone: str = "",
    bank_name: str = "",
    bank_account: str = "",
    save_profile_as: str = "",
    medium: str = InvoiceMedium.PAPER,
    email: str = "",
    actor: Actor = Actor.system("invoices.services.invoice_application_create"),
) -> InvoiceApplication:
    """Apply for an invoice and debit the invoiceable amount (R10, R13).

    The customer row is locked before the balance is read, so two parallel applications are
    serialised and cannot overdraw. With ``save_profile_as``, the details are also saved as a
    named profile, in the same transaction: both happen or neither.

    A digital invoice (数电票) needs no mailing address; it is issued through the tax system
    after commit (``invoice_issue_task``: at once with the sandbox, by finance with the manual
    backend) and also emailed when ``email`` is given. A paper one is printed and mailed.
    """
    amount = money(amount)
    if invoice_type not in InvoiceType.values:
        raise InvalidInvoiceApplication(_("Choose a VAT special or a VAT ordinary invoice."))
    if medium not in InvoiceMedium.values:
        raise InvalidInvoiceApplication(_("Choose a digital or a paper invoice."))
    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise InvalidInvoiceApplication(_("Enter a valid email address.")) from exc
    title = title.strip()
    if not title:
        raise InvalidInvoiceApplication(_("The invoice title is required."))
    fields = {
        "registered_address": registered_address.strip(),
        "registered_phone": registered_phone.strip(),
        "bank_name": bank_name.strip(),
        "bank_account": bank_account.strip(),
    }
    customer = _customer_lock(customer_id)
    if taxpayer_id.strip():
        taxpayer_id = validate_taxpayer_id(taxpayer_id)
    elif invoice_type == InvoiceType.SPECIAL:
        raise InvalidInvoiceApplication(_("A VAT special invoice needs the taxpayer ID."))
    elif customer.kind == CustomerKind.ENTERPRISE:
        raise InvalidInvoiceApplication(_("An enterprise invoice needs the taxpayer ID."))
    if invoice_type == InvoiceType.SPECIAL and not all(fields.values()):
        raise InvalidInvoiceApplication(
            _(
                "A VAT special invoice needs the registered address and phone, the bank and "
                "the account number."
            )
        )
    mailing = {
        "mailing_recipient": mailing_recipient.strip(),
        "mailing_phone": mailing_phone.strip(),
        "mailing_address": mailing_address.strip(),
        "mailing_postal_code": mailing_postal_code.strip(),
    }
    if medium == InvoiceMedium.PAPER and not (
        mailing["mailing_recipient"] and mailing["mailing_phone"] and mailing["mailing_address"]
    ):
        raise InvalidInvoiceApplication(_("The mailing recipient, phone and address are required."))

    available = invoiceable_amount(customer_id=customer.pk)
    if amount > available:
        raise InsufficientInvoiceableAmount(
            _("The amount %(amount)s exceeds your invoiceable amount of %(available)s.")
            % {"amount": amount, "available": available}
        )
    application = InvoiceApplication.objects.create(
        customer=customer,
        invoice_type=invoice_type,
        medium=medium,
        email=email,
        title=title,
        taxpayer_id=taxpayer_id,
        amount=amount,
        **mailing,
        **fields,
    )
    LedgerEntry.objects.create(
        customer=customer,
        kind=LedgerKind.INVOICE_APPLIED,
        amount=-amount,
        application=application,
    )
    audit_record(
        actor=actor,
        action="application.created",
        obj=application,
        customer_id=customer.pk,
        params={"amount": amount, "medium": medium, "invoice_type": invoice_type},
    )
    if save_profile_as:
        invoice_profile_save(
            customer_id=customer.pk,
            name=save_profile_as,
            invoice_type=invoice_type,
            medium=medium,
            email=email,
            title=title,
            taxpayer_id=taxpayer_id,
            **mailing,
            **fields,
        )
    if medium == InvoiceMedium.DIGITAL:
        from invoices.tasks import invoice_issue_task

        enqueue_on_commit(invoice_issue_task, application.pk)
    return application


def invoice_application_issued_by_tax_system(application: InvoiceApplication) -> bool:
    """Whether the configured tax system issues this application without people."""
    return get_tax_system().issues_by_itself(application.medium)


@transaction.atomic
def invoice_application_cancel(
    *, application_id: int, customer_id: int, actor: Actor
) -> InvoiceApplication:
    """The customer withdraws an application not issued yet: the amount it debited is credited
    back, once (R10's ledger stays exact). Cancelling twice is a no-op. Another customer's
    application is not found (``DoesNotExist``).

    The customer row is locked first, as by every change to its invoiceable amount, then the
    application; ``invoice_issue`` locks the application, so issuing and cancelling one are
    serialised and exactly one of them wins.
    """
    _customer_lock(customer_id)
    application = InvoiceApplication.objects.select_for_update().get(
        pk=application_id, customer_id=customer_id
    )
    if application.state == ApplicationState.CANCELLED:
        return application
    if not invoice_application_can_be_cancelled(
        application, issued_by_tax_system=invoice_application_issued_by_tax_system(application)
    ):
        if application.state == ApplicationState.PENDING:
            raise ApplicationNotCancellable(
                _(
                    "This digital invoice is being issued by the tax system and cannot be "
                    "cancelled: once it is issued, return it."
                )
            )
        raise ApplicationNotCancellable()
    application.state = ApplicationState.CANCELLED
    application.cancelled_at = timezone.now()
    application.save(update_fields=["state", "cancelled_at"])
    LedgerEntry.objects.create(
        customer_id=customer_id,
        kind=LedgerKind.APPLICATION_CANCELLED,
        amount=application.amount,
        application=application,
    )
    audit_record(
        actor=actor,
        action="application.cancelled",
        obj=application,
        customer_id=customer_id,
        params={"amount": application.amount},
    )
    return application


def _invoice_insert(**fields: Any) -> Invoice:
    try:
        with transaction.atomic():
            return Invoice.objects.create(**fields)
    except IntegrityError as exc:
        if Invoice.objects.filter(code=fields["code"], number=fields["number"]).exists():
            raise DuplicateInvoiceNumber(
                _("Invoice %(code)s %(number)s already exists.")
                % {"code": fields["code"], "number": fields["number"]}
            ) from exc
        raise


# What a digital invoice file may be: the platforms deliver PDF and OFD (an XML-in-zip format).
DOCUMENT_SIGNATURES = {".pdf": b"%PDF-", ".ofd": b"PK\x03\x04"}
DOCUMENT_MAX_BYTES = 10 * 1024 * 1024


def _check_document(document: bytes, name: str) -> str:
    extension = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    signature = DOCUMENT_SIGNATURES.get(extension)
    if signature is None or not document.startswith(signature):
        raise InvalidInvoiceApplication(_("The invoice file must be a PDF or an OFD file."))
    if len(document) > DOCUMENT_MAX_BYTES:
        raise InvalidInvoiceApplication(_("The invoice file is larger than 10 MB."))
    return extension


@transaction.atomic
def invoice_issue(
    *,
    application_id: int,
    code: str,
    number: str,
    issued_at: dt.datetime | None = None,
    courier: str = "",
    tracking_number: str = "",
    document: bytes = b"",
    document_name: str = "",
    actor: Actor = Actor.system("invoices.services.invoice_issue"),
) -> Invoice:
    """Record the invoice the tax system issued for a pending application; it becomes
    returnable (R1).

    Paper: its code and number, and how it was mailed. Digital (数电票): its 20-digit number
    (no code) and its file (PDF or OFD), emailed after commit when the application gave an
    address. The application's amount is the invoice's total (价税合计); amount and tax are
    split from it by the one rounding rule (``invoices/tax.py``) at the default 6 %.
    """
    application = InvoiceApplication.objects.select_for_update().get(pk=application_id)
    if not invoice_application_can_be_issued(application):
        if application.state == ApplicationState.CANCELLED:
            raise ApplicationNotPending()
        raise ApplicationAlreadyIssued()
    code, number = code.strip(), number.strip()
    digital = application.medium == InvoiceMedium.DIGITAL
    if digital:
        if code or not (len(number) == 20 and number.isascii() and number.isdigit()):
            raise InvalidInvoiceApplication(
                _("A digital invoice has one 20-digit number and no code.")
            )
        if not document:
            raise InvalidInvoiceApplication(_("Attach the digital invoice's file (PDF or OFD)."))
        extension = _check_document(document, document_name)
        courier = tracking_number = ""
    invoice = _invoice_insert(
        customer_id=application.customer_id,
        application=application,
        invoice_type=application.invoice_type,
        medium=application.medium,
        title=application.title,
        **breakdown_from_total(application.amount).as_fields(),
        code=code,
        number=number,
        issued_at=issued_at or timezone.now(),
        issuer=Issuer.PROVIDER,
        issuer_name=settings.PROVIDER_NAME,
        courier=courier.strip(),
        tracking_number=tracking_number.strip(),
    )
    if digital:
        invoice.document.save(f"{number}{extension}", ContentFile(document), save=False)
        invoice.save(update_fields=["document"])
    application.state = ApplicationState.ISSUED
    application.save(update_fields=["state"])
    audit_record(
        actor=actor,
        action="invoice.issued",
        obj=invoice,
        customer_id=invoice.customer_id,
        params={
            "application": application.pk,
            "code": invoice.code,
            "number": invoice.number,
            "total": invoice.total,
        },
    )
    if digital and application.email:
        from invoices.tasks import invoice_email_task

        enqueue_on_commit(invoice_email_task, invoice.pk)
    return invoice


def invoice_email_send(*, invoice_id: int) -> bool:
    """Email a digital invoice's file to the address its application gave; once.

    Sent outside any transaction (the mail server may be slow), then marked; a crash between
    the two sends it again on retry, which is the safe side for a delivery. False when there
    is nothing to send (no address, no file, already sent).
    """
    invoice = Invoice.objects.select_related("application", "customer").get(pk=invoice_id)
    application = invoice.application
    if not settings.INVOICE_EMAIL_ENABLED:
        logger.warning("invoice %s not emailed: no mail server (EMAIL_URL) is set", invoice.pk)
        return False
    if (
        invoice.emailed_at is not None
        or application is None
        or not application.email
        or not invoice.document
    ):
        return False
    with translation.override(invoice.customer.language):
        subject = _("Your invoice %(number)s from %(provider)s") % {
            "number": invoice.number,
            "provider": invoice.issuer_name,
        }
        body = _(
            "Attached is the %(kind)s %(number)s for %(total)s yuan (tax included), issued to "
            "%(title)s. You can also download it from Invoice Management in the Billing Center."
        ) % {
            "kind": invoice.kind_label,
            "number": invoice.number,
            "total": invoice.total,
            "title": invoice.title,
        }
    message = EmailMessage(subject=subject, body=body, to=[application.email])
    with invoice.document.open("rb") as handle:
        content = handle.read()
    extension = (invoice.document.name or "").rsplit(".", 1)[-1].lower()
    mimetype = "application/pdf" if extension == "pdf" else "application/ofd"
    message.attach(f"{invoice.number}.{extension}", content, mimetype)
    message.send()
    Invoice.objects.filter(pk=invoice.pk, emailed_at__isnull=True).update(emailed_at=timezone.now())
    return True


@transaction.atomic
def invoice_record_marketplace(
    *,
    customer_id: int,
    issuer_name: str,
    invoice_type: str,
    title: str,
    amount: Decimal | str,
    code: str,
    number: str,
    issued_at: dt.datetime,
) -> Invoice:
    """Record an invoice issued by a Cloud Market provider. It is shown but never returned here."""
    return _invoice_insert(
        customer_id=customer_id,
        invoice_type=invoice_type,
        title=title,
        **breakdown_from_total(money(amount)).as_fields(),
        code=code,
        number=number,
        issued_at=issued_at,
        issuer=Issuer.MARKETPLACE,
        issuer_name=issuer_name,
    )


PROFILE_FIELDS = (
    "invoice_type",
    "medium",
    "email",
    "title",
    "taxpayer_id",
    "registered_address",
    "registered_phone",
    "bank_name",
    "bank_account",
    "mailing_recipient",
    "mailing_phone",
    "mailing_address",
    "mailing_postal_code",
)


@transaction.atomic
def invoice_profile_save(*, customer_id: int, name: str, **fields: str) -> InvoiceProfile:
    """Save (or overwrite, by name) the details of an application for reuse next time."""
    name = (name or "").strip()[:100]
    if not name:
        raise InvalidInvoiceApplication(_("Give the profile a name."))
    values = {key: str(fields.get(key, "")).strip() for key in PROFILE_FIELDS}
    values["medium"] = values["medium"] or InvoiceMedium.PAPER
    profile, _created = InvoiceProfile.objects.update_or_create(
        customer_id=customer_id, name=name, defaults=values
    )
    return profile


@transaction.atomic
def customer_notifications_update(
    *, customer_id: int, notify_by: str, email: str, language: str, actor: Actor
) -> Customer:
    """The customer chooses how they hear about their returns (SMS, email or both), in which
    language, and the address emails go to (their log-in's). Email needs an address, SMS a
    mobile number on file; saving the same choice again changes nothing."""
    customer = Customer.objects.select_for_update().select_related("user").get(pk=customer_id)
    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise InvalidNotificationSettings(_("Enter a valid email address.")) from exc
    if notify_by not in NotifyBy.values:
        raise InvalidNotificationSettings(_("Choose how you want to be told."))
    if notify_by in (NotifyBy.EMAIL, NotifyBy.BOTH) and not email:
        raise InvalidNotificationSettings()
    if notify_by in (NotifyBy.SMS, NotifyBy.BOTH) and not customer.mobile:
        raise InvalidNotificationSettings(
            _("No mobile number is on file for SMS: choose email, or ask us to add one.")
        )
    if language not in dict(settings.LANGUAGES):
        raise InvalidNotificationSettings(_("Choose a language."))
    before = {"notify_by": customer.notify_by, "language": customer.language}
    after = {"notify_by": notify_by, "language": language}
    changed = before != after or customer.user.email != email
    if before != after:
        customer.notify_by = notify_by
        customer.language = language
        customer.save(update_fields=["notify_by", "language"])
    if customer.user.email != email:
        customer.user.email = email
        customer.user.save(update_fields=["email"])
    if changed:
        audit_record(
            actor=actor,
            action="customer.notifications_changed",
            obj=customer,
            customer_id=customer.pk,
            params={**after, "email": email},
        )
    return customer
