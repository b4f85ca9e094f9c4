"""Customers, statements, invoice applications, invoices and the invoiceable-amount ledger.

Money is ``Decimal`` with two places. Financial rows (ledger entries, invoices, red-letter
invoices) are never deleted (``on_delete=PROTECT``) and ledger entries are never updated: a
correction is a new row. The invoiceable amount is derived from the ledger, never stored.
"""

from decimal import Decimal
from pathlib import PurePath

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

ZERO = Decimal("0.00")
CENT = Decimal("0.01")  # one fen: the unit amounts are kept and rounded to
DEFAULT_TAX_RATE = Decimal("0.060")  # cloud services (modern services) are taxed at 6 %


class CustomerKind(models.TextChoices):
    ENTERPRISE = "enterprise", _("Enterprise")
    INDIVIDUAL = "individual", _("Individual")


class NotifyBy(models.TextChoices):
    """How the customer hears about their returns; empty means not chosen yet: SMS when a
    mobile is set, email when an address is set (``invoices.rules.customer_notify_channels``)."""

    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    BOTH = "both", _("SMS and email")


class Customer(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="customer",
        verbose_name=_("user"),
    )
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(
        _("kind"), max_length=16, choices=CustomerKind.choices, default=CustomerKind.ENTERPRISE
    )
    taxpayer_id = models.CharField(_("taxpayer ID"), max_length=20, blank=True)
    mobile = models.CharField(
        _("mobile number"), max_length=16, blank=True, help_text=_("E.164, e.g. +8613800138000")
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="zh-hans"
    )
    notify_by = models.CharField(
        _("notify by"),
        max_length=8,
        choices=NotifyBy.choices,
        blank=True,
        default="",
        db_default="",  # rows written by set-based SQL (seed_bench) get it too
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            models.CheckConstraint(
                condition=Q(mobile="") | Q(mobile__regex=r"^\+[1-9][0-9]{6,14}$"),
                name="customer_mobile_e164",
            ),
            models.CheckConstraint(
                condition=~Q(kind=CustomerKind.ENTERPRISE) | ~Q(taxpayer_id=""),
                name="customer_enterprise_has_taxpayer_id",
            ),
            models.CheckConstraint(
                condition=Q(notify_by__in=["", *NotifyBy.values]), name="customer_notify_by_valid"
            ),
        ]
        # Back-office search, exact or by the beginning (pattern ops serve both = and LIKE
        # 'x%' whatever the collation). The name has a trigram index, made in PostgreSQL only
        # by migration 0010 (it does not exist in SQLite, used for local development).
        indexes = [
            models.Index(
                fields=["taxpayer_id"],
                name="customer_taxpayer_id_idx",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(
                fields=["mobile"], name="customer_mobile_idx", opclasses=["varchar_pattern_ops"]
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Statement(models.Model):
    """A monthly bill. Settling it credits its amount to the invoiceable amount."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="statements", verbose_name=_("customer")
    )
    period = models.DateField(_("period"), help_text=_("First day of the billed month"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("statement")
        verbose_name_plural = _("statements")
        ordering = ["-period"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "period"], name="statement_one_per_month"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="statement_amount_positive"),
            models.CheckConstraint(condition=Q(period__day=1), name="statement_period_first_day"),
        ]
        indexes = [models.Index(fields=["period", "id"], name="statement_order_idx")]

    def __str__(self) -> str:
        return f"{self.customer} {self.period:%Y-%m}"


class InvoiceType(models.TextChoices):
    SPECIAL = "special", _("VAT special invoice")
    ORDINARY = "ordinary", _("VAT ordinary invoice")


class InvoiceMedium(models.TextChoices):
    """Paper (code + number, mailed) or fully digitalized (数电票: one 20-digit number, a file)."""

    PAPER = "paper", _("Paper")
    DIGITAL = "digital", _("Digital")


# The four kinds of invoice, as the tax platforms print their names.
INVOICE_KIND_LABELS = {
    (InvoiceMedium.PAPER, InvoiceType.SPECIAL): _("Paper VAT special invoice"),
    (InvoiceMedium.PAPER, InvoiceType.ORDINARY): _("Paper VAT ordinary invoice"),
    (InvoiceMedium.DIGITAL, InvoiceType.SPECIAL): _("Digital invoice (VAT special invoice)"),
    (InvoiceMedium.DIGITAL, InvoiceType.ORDINARY): _("Digital invoice (ordinary invoice)"),
}

# Paper: code 10 or 12 digits + number 8 digits. Digital (数电票): no code, number 20 digits.
PAPER_CODE_REGEX = r"^([0-9]{10}|[0-9]{12})$"
PAPER_NUMBER_REGEX = r"^[0-9]{8}$"
DIGITAL_NUMBER_REGEX = r"^[0-9]{20}$"
# Red-letter information form (paper special invoices): 16 digits. Red-letter confirmation
# form (红字发票信息确认单, digital invoices): 20 digits.
PAPER_FORM_REGEX = r"^[0-9]{16}$"
DIGITAL_FORM_REGEX = r"^[0-9]{20}$"


def _number_format(medium_field: str = "medium") -> Q:
    """Each medium's code and number format, as one constraint condition."""
    return Q(
        **{medium_field: InvoiceMedium.PAPER},
        code__regex=PAPER_CODE_REGEX,
        number__regex=PAPER_NUMBER_REGEX,
    ) | Q(**{medium_field: InvoiceMedium.DIGITAL}, code="", number__regex=DIGITAL_NUMBER_REGEX)


class ApplicationState(models.TextChoices):
    PENDING = "pending", _("Pending")
    ISSUED = "issued", _("Issued")
    CANCELLED = "cancelled", _("Cancelled")


class InvoiceApplication(models.Model):
    """The customer's request for an invoice ("Invoice request record")."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="applications", verbose_name=_("customer")
    )
    invoice_type = models.CharField(_("invoice type"), max_length=16, choices=InvoiceType.choices)
    medium = models.CharField(
        _("medium"), max_length=8, choices=InvoiceMedium.choices, default=InvoiceMedium.PAPER
    )
    title = models.CharField(_("invoice title"), max_length=200)
    taxpayer_id = models.CharField(_("taxpayer ID"), max_length=20, blank=True)
    registered_address = models.CharField(_("registered address"), max_length=200, blank=True)
    registered_phone = models.CharField(_("registered phone"), max_length=40, blank=True)
    bank_name = models.CharField(_("bank"), max_length=200, blank=True)
    bank_account = models.CharField(_("bank account"), max_length=64, blank=True)
    email = models.EmailField(
        _("email"),
        blank=True,
        help_text=_("A digital invoice is also sent to this address."),
    )
    mailing_recipient = models.CharField(_("recipient"), max_length=100, blank=True)
    mailing_phone = models.CharField(_("recipient phone"), max_length=40, blank=True)
    mailing_address = models.CharField(_("mailing address"), max_length=300, blank=True)
    mailing_postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    state = models.CharField(
        _("state"),
        max_length=16,
        choices=ApplicationState.choices,
        default=ApplicationState.PENDING,
    )
    created_at = models.DateTimeField(_("applied at"), auto_now_add=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("invoice application")
        verbose_name_plural = _("invoice applications")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="application_customer_idx")
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="application_amount_positive"),
            models.CheckConstraint(
                condition=~Q(invoice_type=InvoiceType.SPECIAL)
                | (
                    ~Q(taxpayer_id="")
                    & ~Q(registered_address="")
                    & ~Q(registered_phone="")
                    & ~Q(bank_name="")
                    & ~Q(bank_account="")
                ),
                name="application_special_has_registration",
            ),
            models.CheckConstraint(
                condition=~Q(medium=InvoiceMedium.PAPER)
                | (~Q(mailing_recipient="") & ~Q(mailing_phone="") & ~Q(mailing_address="")),
                name="application_paper_has_mailing_address",
            ),
            models.CheckConstraint(
                condition=Q(state=ApplicationState.CANCELLED, cancelled_at__isnull=False)
                | (~Q(state=ApplicationState.CANCELLED) & Q(cancelled_at__isnull=True)),
                name="application_cancelled_when_and_only_then",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} {self.amount}"


def private_storage():
    from django.core.files.storage import storages

    return storages["private"]


def invoice_document_path(instance: "Invoice", filename: str) -> str:
    # The stored name is ours (customer id and invoice number), never the uploaded file's.
    extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return f"invoices/{instance.customer_id}/{instance.number}{extension}"


class Issuer(models.TextChoices):
    PROVIDER = "provider", _("The provider")
    MARKETPLACE = "marketplace", _("Cloud Market provider")


class InvoiceState(models.TextChoices):
    ISSUED = "issued", _("Issued")
    VOIDED = "voided", _("Voided")
    REVERSED = "reversed", _("Reversed")


# A digital invoice's file, as the tax system issues it.
DOCUMENT_CONTENT_TYPES = {".pdf": "application/pdf", ".ofd": "application/ofd"}


class Invoice(models.Model):
    """A VAT invoice, special or ordinary, on paper or fully digitalized (数电票).

    A paper invoice is identified by its code (10 or 12 digits) + number (8 digits) and is
    mailed; a digital one by its 20-digit number alone (no code), delivered as a file
    (``document``). A digital invoice is never voided: it is only ever reversed (R6).

    It prints amount (金额, before tax), tax rate, tax (税额) and total (价税合计). The total is
    the figure the customer applied for and the ledger moves: the invoiceable amount is a total,
    tax included, as the provider's bills are.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("customer")
    )
    application = models.OneToOneField(
        InvoiceApplication,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoice",
        help_text=_("Empty for Cloud Market invoices, which are applied for elsewhere."),
        verbose_name=_("invoice application"),
    )
    invoice_type = models.CharField(_("invoice type"), max_length=16, choices=InvoiceType.choices)
    medium = models.CharField(
        _("medium"), max_length=8, choices=InvoiceMedium.choices, default=InvoiceMedium.PAPER
    )
    title = models.CharField(_("invoice title"), max_length=200)
    amount = models.DecimalField(_("amount before tax"), max_digits=14, decimal_places=2)
    tax_rate = models.DecimalField(_("tax rate"), max_digits=4, decimal_places=3)
    tax = models.DecimalField(_("tax"), max_digits=14, decimal_places=2)
    total = models.DecimalField(_("total"), max_digits=14, decimal_places=2)
    code = models.CharField(_("invoice code"), max_length=12, blank=True)
    number = models.CharField(_("invoice number"), max_length=20)
    document = models.FileField(
        _("invoice file"),
        upload_to=invoice_document_path,
        storage=private_storage,
        blank=True,
        help_text=_("The digital invoice as the tax system issued it (PDF or OFD)."),
    )
    emailed_at = models.DateTimeField(_("emailed at"), null=True, blank=True)
    issued_at = models.DateTimeField(_("issued at"))
    issuer = models.CharField(_("issuer"), max_length=16, choices=Issuer.choices)
    issuer_name = models.CharField(_("issuer name"), max_length=200)
    state = models.CharField(
        _("state"), max_length=16, choices=InvoiceState.choices, default=InvoiceState.ISSUED
    )
    courier = models.CharField(_("courier"), max_length=64, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True)
    state_changed_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("voided or reversed at")
    )

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-issued_at", "-id"]
        indexes = [
            # A customer's invoices in the page's order, ties on the instant broken by id as
            # the ordering does (invoices issued in one batch share ``issued_at``): a page is
            # read straight off the index, whatever the number of invoices (issue 16, P2).
            models.Index(
                fields=["customer", "-issued_at", "-id"], name="invoice_customer_order_idx"
            ),
            # The back office's invoices list in its default order (Meta.ordering).
            models.Index(fields=["-issued_at", "-id"], name="invoice_order_idx"),
            # Back-office search by the number alone (8-digit paper, 20-digit digital), exact or
            # by its beginning; code + number is served by the unique constraint's index.
            models.Index(
                fields=["number"], name="invoice_number_idx", opclasses=["varchar_pattern_ops"]
            ),
        ]
        constraints = [
            # A digital invoice's code is empty: its 20-digit number alone is unique.
            models.UniqueConstraint(fields=["code", "number"], name="invoice_code_number_unique"),
            # What a return's copy of its invoice's code and number refers to, with its id
            # (``return_invoice_copy_fk``, returns' migration 0015): unique since the id is.
            models.UniqueConstraint(
                fields=["id", "code", "number"], name="invoice_id_code_number_unique"
            ),
            models.CheckConstraint(condition=_number_format(), name="invoice_number_format"),
            models.CheckConstraint(
                condition=~Q(medium=InvoiceMedium.DIGITAL, state=InvoiceState.VOIDED),
                name="invoice_digital_never_voided",
            ),
            models.CheckConstraint(
                condition=~Q(medium=InvoiceMedium.DIGITAL) | Q(courier="", tracking_number=""),
                name="invoice_digital_not_mailed",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_amount_positive"),
            models.CheckConstraint(condition=Q(tax__gte=0), name="invoice_tax_not_negative"),
            models.CheckConstraint(
                condition=Q(total=F("amount") + F("tax")), name="invoice_total_is_amount_plus_tax"
            ),
            models.CheckConstraint(
                condition=Q(tax_rate__gte=0, tax_rate__lt=1), name="invoice_tax_rate_range"
            ),
            models.CheckConstraint(
                condition=Q(issuer=Issuer.MARKETPLACE) | Q(application__isnull=False),
                name="invoice_provider_has_application",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.number}" if self.code else self.number

    @property
    def is_special(self) -> bool:
        return self.invoice_type == InvoiceType.SPECIAL

    @property
    def is_digital(self) -> bool:
        return self.medium == InvoiceMedium.DIGITAL

    @property
    def kind_label(self) -> str:
        """Its kind as printed: e.g. "Digital invoice (VAT special invoice)"."""
        return str(INVOICE_KIND_LABELS[InvoiceMedium(self.medium), InvoiceType(self.invoice_type)])

    @property
    def document_filename(self) -> str:
        """Its file's name for a download: the invoice number, the tax system's extension."""
        return f"{self.number}{PurePath(self.document.name or '').suffix.lower()}"

    @property
    def document_content_type(self) -> str:
        """What its file is, by the extension the tax system gave it (PDF or OFD)."""
        extension = PurePath(self.document.name or "").suffix.lower()
        return DOCUMENT_CONTENT_TYPES.get(extension, "application/octet-stream")

    @property
    def red_letter_invoice(self) -> "RedLetterInvoice | None":
        """The current red-letter invoice reversing this one, if any (corrections supersede)."""
        return self.red_letter_invoices.filter(superseded_at__isnull=True).first()


class RedLetterInvoice(models.Model):
    """The negative invoice that reverses (红冲) an original one, as the tax system issued it.

    Its code, number and date are the tax system's; its amount, tax and total are the
    original's, negated. One current row per original. Written only when the tax system's
    outcome is recorded (``invoices.taxsystem``), never invented here, never edited: a wrong
    entry is corrected by a new row that supersedes it (``TaxOutcomeCorrection`` says who and
    why); the old row keeps everything it said and only gets ``superseded_at``.
    """

    original = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        related_name="red_letter_invoices",
        verbose_name=_("original invoice"),
    )
    tax_request = models.ForeignKey(
        "TaxRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="red_letter_invoices",
        help_text=_("Empty only for reversals recorded before the tax-system boundary existed."),
        verbose_name=_("tax-system request"),
    )
    medium = models.CharField(
        _("medium"),
        max_length=8,
        choices=InvoiceMedium.choices,
        default=InvoiceMedium.PAPER,
        help_text=_("The original's: a digital invoice is reversed by a digital one."),
    )
    code = models.CharField(_("invoice code"), max_length=12, blank=True)
    number = models.CharField(_("invoice number"), max_length=20)
    amount = models.DecimalField(_("amount before tax"), max_digits=14, decimal_places=2)
    tax_rate = models.DecimalField(_("tax rate"), max_digits=4, decimal_places=3)
    tax = models.DecimalField(_("tax"), max_digits=14, decimal_places=2)
    total = models.DecimalField(_("total"), max_digits=14, decimal_places=2)
    red_letter_form_number = models.CharField(
        _("red-letter form number"),
        max_length=32,
        blank=True,
        help_text=_(
            "Paper special invoice: the red-letter information form (16 digits). Digital "
            "invoice: the red-letter confirmation form (20 digits)."
        ),
    )
    issued_on = models.DateField(_("issue date"))
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    superseded_at = models.DateTimeField(_("superseded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("red-letter invoice")
        verbose_name_plural = _("red-letter invoices")
        constraints = [
            models.UniqueConstraint(
                fields=["original"],
                condition=Q(superseded_at__isnull=True),
                name="red_letter_one_current_per_original",
            ),
            models.UniqueConstraint(
                fields=["code", "number"],
                condition=Q(superseded_at__isnull=True),
                name="red_letter_code_number_unique",
            ),
            models.CheckConstraint(condition=Q(amount__lt=0), name="red_letter_amount_negative"),
            models.CheckConstraint(condition=Q(tax__lte=0), name="red_letter_tax_not_positive"),
            models.CheckConstraint(
                condition=Q(total=F("amount") + F("tax")),
                name="red_letter_total_is_amount_plus_tax",
            ),
            models.CheckConstraint(condition=_number_format(), name="red_letter_number_format"),
            models.CheckConstraint(
                condition=Q(medium=InvoiceMedium.PAPER, red_letter_form_number="")
                | Q(medium=InvoiceMedium.PAPER, red_letter_form_number__regex=PAPER_FORM_REGEX)
                | Q(medium=InvoiceMedium.DIGITAL, red_letter_form_number__regex=DIGITAL_FORM_REGEX),
                name="red_letter_form_number_format",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.number} ({self.total})".strip()


class ReturnOutcome(models.TextChoices):
    """What a return did to its invoice (R6): the one enum for it (``void_or_reverse_decision``,
    ``ReturnRequest.outcome``). ``TaxOperation`` names the request sent to the tax system and
    ``InvoiceState`` the invoice's own state; their values differ and so do their meanings."""

    VOIDED = "voided", _("Voided")
    REVERSED = "reversed", _("Reversed (red-letter invoice)")


class TaxOperation(models.TextChoices):
    VOID = "void", _("Void")
    RED_LETTER = "red_letter", _("Red-letter invoice")


class ReversalReason(models.TextChoices):
    """The reason codes of a reversal, as the tax platforms name them."""

    ISSUING_ERROR = "issuing_error", _("Issuing error (开票有误)")
    SALES_RETURN = "sales_return", _("Sales return (销货退回)")
    SERVICE_STOPPED = "service_stopped", _("Service stopped (服务中止)")
    SALES_DISCOUNT = "sales_discount", _("Sales discount (销售折让)")


class TaxRequestState(models.TextChoices):
    PENDING = "pending", _("To do in the tax system")
    AWAITING_BUYER = "awaiting_buyer", _("Awaiting the buyer's confirmation")
    DONE = "done", _("Done in the tax system")
    REFUSED = "refused", _("Refused by the tax system")


# A request in one of these states holds its invoice: no second request may be opened.
TAX_REQUEST_LIVE_STATES = ("pending", "awaiting_buyer", "done")


class BuyerDecision(models.TextChoices):
    """What became of a red-letter confirmation form the buyer had to confirm (数电票)."""

    CONFIRMED = "confirmed", _("Confirmed by the buyer")
    REFUSED = "refused", _("Refused by the buyer")
    EXPIRED = "expired", _("Not confirmed within 72 hours")


# A red-letter confirmation form the buyer must confirm lapses after this long (the e-tax
# platform's rule).
CONFIRMATION_WINDOW_HOURS = 72


class TaxRequest(models.Model):
    """One request to the tax system to void or reverse an invoice (R6), under our own serial.

    The serial is what an invoicing service provider's API takes to make a submission
    idempotent and to query its result. With the manual backend the pending requests are
    finance's queue "To do in the tax system". The outcome (the void's date, or the red-letter
    invoice) is recorded once, by finance or by the backend; a refused request stays, with the
    tax system's error, and a retry is a new request with a new serial.
    """

    serial = models.CharField(_("request serial number"), max_length=32, unique=True)
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="tax_requests", verbose_name=_("invoice")
    )
    medium = models.CharField(
        _("medium"),
        max_length=8,
        choices=InvoiceMedium.choices,
        default=InvoiceMedium.PAPER,
        help_text=_("The invoice's: a digital invoice is only ever reversed."),
    )
    operation = models.CharField(_("operation"), max_length=16, choices=TaxOperation.choices)
    reason_code = models.CharField(_("reason code"), max_length=16, choices=ReversalReason.choices)
    buyer_certified = models.BooleanField(
        _("certified by the buyer"),
        default=False,
        help_text=_("The buyer has certified (deducted) this special invoice."),
    )
    red_letter_form_number = models.CharField(
        _("red-letter form number"),
        max_length=20,
        blank=True,
        help_text=_(
            "Paper: the buyer's red-letter information form (certified special invoices, 16 "
            "digits). Digital: the red-letter confirmation form (20 digits), once entered."
        ),
    )
    buyer_booked = models.BooleanField(
        _("booked or use confirmed by the buyer"),
        default=False,
        help_text=_(
            "Digital invoices: the buyer has booked it or confirmed its use (入账 / 用途确认), "
            "so it must confirm the red-letter confirmation form within 72 hours."
        ),
    )
    buyer_entered_form = models.BooleanField(
        _("form entered by the buyer"),
        default=False,
        help_text=_(
            "Digital invoices: the buyer entered the red-letter confirmation form itself; the "
            "provider confirms it."
        ),
    )
    confirm_by = models.DateTimeField(
        _("buyer to confirm by"),
        null=True,
        blank=True,
        help_text=_("72 hours after the form was entered; empty when no confirmation is needed."),
    )
    buyer_decision = models.CharField(
        _("buyer's decision"), max_length=16, choices=BuyerDecision.choices, blank=True
    )
    seller_files_form = models.BooleanField(
        _("seller files the red-letter form"),
        default=False,
        help_text=_(
            "An uncertified paper special invoice of an earlier month: the provider files the "
            "red-letter information form in the tax system before the red-letter invoice."
        ),
    )
    backend = models.CharField(_("tax-system backend"), max_length=32)
    state = models.CharField(
        _("state"), max_length=16, choices=TaxRequestState.choices, default=TaxRequestState.PENDING
    )
    voided_on = models.DateField(_("voided on"), null=True, blank=True)
    error = models.TextField(_("tax system's answer"), blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty when the backend recorded the outcome."),
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("tax-system request")
        verbose_name_plural = _("tax-system requests")
        ordering = ["created_at", "id"]
        permissions = [
            ("record_taxrequest", _("Can record the tax system's outcome")),
            ("correct_taxrequest", _("Can correct a recorded tax-system outcome")),
        ]
        indexes = [models.Index(fields=["state", "created_at"], name="tax_request_state_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(state__in=TAX_REQUEST_LIVE_STATES),
                name="tax_request_one_live_per_invoice",
                violation_error_message=_("This invoice already has a request in the tax system."),
            ),
            models.CheckConstraint(
                condition=Q(serial__regex=r"^[A-Z0-9]{8,32}$"), name="tax_request_serial_format"
            ),
            models.CheckConstraint(
                condition=Q(red_letter_form_number="")
                | Q(medium=InvoiceMedium.PAPER, red_letter_form_number__regex=PAPER_FORM_REGEX)
                | Q(medium=InvoiceMedium.DIGITAL, red_letter_form_number__regex=DIGITAL_FORM_REGEX),
                name="tax_request_form_number_format",
            ),
            models.CheckConstraint(
                condition=~Q(operation="void")
                | (Q(buyer_certified=False, seller_files_form=False, red_letter_form_number="")),
                name="tax_request_void_needs_no_form",
            ),
            models.CheckConstraint(
                condition=~Q(medium=InvoiceMedium.DIGITAL, operation=TaxOperation.VOID),
                name="tax_request_digital_never_void",
            ),
            models.CheckConstraint(
                condition=Q(
                    medium=InvoiceMedium.PAPER,
                    buyer_booked=False,
                    buyer_entered_form=False,
                    confirm_by__isnull=True,
                    buyer_decision="",
                )
                | Q(medium=InvoiceMedium.DIGITAL, buyer_certified=False, seller_files_form=False),
                name="tax_request_medium_fields",
            ),
            models.CheckConstraint(
                condition=~Q(buyer_entered_form=True) | ~Q(red_letter_form_number=""),
                name="tax_request_buyer_form_has_number",
            ),
            models.CheckConstraint(
                condition=~Q(state="awaiting_buyer")
                | (Q(buyer_booked=True, confirm_by__isnull=False) & ~Q(red_letter_form_number="")),
                name="tax_request_awaiting_buyer_has_form",
            ),
            models.CheckConstraint(
                condition=~Q(state="done", operation="void") | Q(voided_on__isnull=False),
                name="tax_request_void_done_has_date",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "awaiting_buyer"], completed_at__isnull=True)
                | (~Q(state__in=["pending", "awaiting_buyer"]) & Q(completed_at__isnull=False)),
                name="tax_request_completed_at_iff_finished",
            ),
            models.CheckConstraint(
                condition=~Q(state="refused") | ~Q(error=""),
                name="tax_request_refusal_has_error",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.serial} {self.get_operation_display()} {self.invoice}"

    @property
    def is_digital(self) -> bool:
        return self.medium == InvoiceMedium.DIGITAL

    # The red-letter invoice this instance recorded (``invoices.taxsystem.services``): its
    # caller words the return's event and SMS from it without reading it back (issue 16, P3).
    _recorded_red_letter: "RedLetterInvoice | None" = None

    @property
    def red_letter_invoice(self) -> "RedLetterInvoice | None":
        """The current red-letter invoice recorded for this request, if any."""
        if self._recorded_red_letter is not None:
            return self._recorded_red_letter
        return self.red_letter_invoices.filter(superseded_at__isnull=True).first()


class TaxOutcomeCorrection(models.Model):
    """An audited correction of a recorded tax-system outcome (a mistyped red-letter number or
    date, a wrong void date): who, when, why, what it said before and after. Append-only."""

    tax_request = models.ForeignKey(
        TaxRequest,
        on_delete=models.PROTECT,
        related_name="corrections",
        verbose_name=_("tax-system request"),
    )
    before = models.JSONField(_("before"))
    after = models.JSONField(_("after"))
    reason = models.CharField(_("reason"), max_length=500)
    corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("corrected by"),
    )
    created_at = models.DateTimeField(_("corrected at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tax outcome correction")
        verbose_name_plural = _("tax outcome corrections")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="tax_correction_has_reason")
        ]

    def __str__(self) -> str:
        return f"{self.tax_request.serial} {self.before} → {self.after}"


class TaxSandboxOperation(models.Model):
    """The sandbox tax platform's own record of a submission (``TAX_SYSTEM_BACKEND=sandbox``).

    Not ours: it stands for the state an invoicing platform keeps on its side, so that the
    sandbox answers a submission asynchronously and a second submission with the same serial
    is recognised, as a provider's API does.
    """

    serial = models.CharField(max_length=32, unique=True, verbose_name=_("request serial number"))
    payload = models.JSONField(verbose_name=_("submission"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    ready_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ready at"))
    result = models.JSONField(null=True, blank=True, verbose_name=_("result"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("submitted at"))

    class Meta:
        verbose_name = _("sandbox tax-platform operation")
        verbose_name_plural = _("sandbox tax-platform operations")

    def __str__(self) -> str:
        return self.serial


class NumberSequence(models.Model):
    """A gap-free counter, incremented under a row lock (red-letter invoice numbers)."""

    name = models.CharField(max_length=32, primary_key=True, verbose_name=_("name"))
    last_value = models.PositiveBigIntegerField(default=0, verbose_name=_("last value"))

    class Meta:
        verbose_name = _("number sequence")
        verbose_name_plural = _("number sequences")

    def __str__(self) -> str:
        return f"{self.name}={self.last_value}"


class LedgerKind(models.TextChoices):
    STATEMENT_SETTLED = "statement_settled", _("Statement settled")
    INVOICE_APPLIED = "invoice_applied", _("Invoice applied for")
    INVOICE_RETURNED = "invoice_returned", _("Invoice returned")
    APPLICATION_CANCELLED = "application_cancelled", _("Application cancelled")


class LedgerEntry(models.Model):
    """One signed movement of a customer's invoiceable amount. Append-only."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="ledger_entries",
        verbose_name=_("customer"),
    )
    kind = models.CharField(max_length=24, choices=LedgerKind.choices, verbose_name=_("kind"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    statement = models.ForeignKey(
        Statement,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("statement"),
    )
    application = models.ForeignKey(
        InvoiceApplication,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invoice application"),
    )
    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
        verbose_name=_("invoice"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["id"]
        # A customer's entries in order, with their amounts in the index itself: the invoiceable
        # amount (``invoiceable_amount``) is an index-only SUM, never a read of the table.
        indexes = [
            models.Index(fields=["customer", "id", "amount"], name="ledger_customer_amount_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind=LedgerKind.STATEMENT_SETTLED, amount__gt=0, statement__isnull=False)
                    | Q(kind=LedgerKind.INVOICE_APPLIED, amount__lt=0, application__isnull=False)
                    | Q(kind=LedgerKind.INVOICE_RETURNED, amount__gt=0, invoice__isnull=False)
                    | Q(
                        kind=LedgerKind.APPLICATION_CANCELLED,
                        amount__gt=0,
                        application__isnull=False,
                    )
                ),
                name="ledger_kind_sign_and_reference",
            ),
            models.UniqueConstraint(
                fields=["statement"],
                condition=Q(kind=LedgerKind.STATEMENT_SETTLED),
                name="ledger_one_credit_per_statement",
            ),
            models.UniqueConstraint(
                fields=["application"],
                condition=Q(kind=LedgerKind.INVOICE_APPLIED),
                name="ledger_one_debit_per_application",
            ),
            models.UniqueConstraint(
                fields=["application"],
                condition=Q(kind=LedgerKind.APPLICATION_CANCELLED),
                name="ledger_one_credit_per_cancelled_application",
            ),
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(kind=LedgerKind.INVOICE_RETURNED),
                name="ledger_one_credit_per_returned_invoice",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"


class InvoiceProfile(models.Model):
    """Invoice details a customer saved to reuse when applying again (not a financial row)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="profiles", verbose_name=_("customer")
    )
    name = models.CharField(_("profile name"), max_length=100)
    invoice_type = models.CharField(_("invoice type"), max_length=16, choices=InvoiceType.choices)
    medium = models.CharField(
        _("medium"), max_length=8, choices=InvoiceMedium.choices, default=InvoiceMedium.PAPER
    )
    title = models.CharField(_("invoice title"), max_length=200)
    taxpayer_id = models.CharField(_("taxpayer ID"), max_length=20, blank=True)
    registered_address = models.CharField(_("registered address"), max_length=200, blank=True)
    registered_phone = models.CharField(_("registered phone"), max_length=40, blank=True)
    bank_name = models.CharField(_("bank"), max_length=200, blank=True)
    bank_account = models.CharField(_("bank account"), max_length=64, blank=True)
    email = models.EmailField(_("email"), blank=True)
    mailing_recipient = models.CharField(_("recipient"), max_length=100, blank=True)
    mailing_phone = models.CharField(_("recipient phone"), max_length=40, blank=True)
    mailing_address = models.CharField(_("mailing address"), max_length=300, blank=True)
    mailing_postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("invoice profile")
        verbose_name_plural = _("invoice profiles")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "name"], name="invoice_profile_name_unique")
        ]
        indexes = [models.Index(fields=["name", "id"], name="invoice_profile_order_idx")]

    def __str__(self) -> str:
        return self.name
