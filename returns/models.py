"""Return requests, their audit trail, received paper (mail receipts) and red-letter forms."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from core.audit.actor import ActorKind
from core.audit.messages import message_render
from invoices.models import (
    DIGITAL_FORM_REGEX,
    Customer,
    Invoice,
    InvoiceMedium,
    ReturnOutcome,
    ReversalReason,
    TaxRequest,
    private_storage,
)
from returns.references import REFERENCE_REGEX, reference_new_now


class ReturnState(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    RECEIVED = "received", _("Paper received")
    PROCESSING = "processing", _("Processing")
    AWAITING_TAX = "awaiting_tax", _("Awaiting the tax system")
    AWAITING_BUYER = "awaiting_buyer", _("Awaiting buyer confirmation")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    REJECTED = "rejected", _("Rejected")
    FAILED = "failed", _("Failed")


# A return in one of these states blocks another return of the same invoice (R2). A completed
# return counts too: its invoice is voided or reversed, and must stay so.
BLOCKING_STATES = (
    ReturnState.SUBMITTED,
    ReturnState.RECEIVED,
    ReturnState.PROCESSING,
    ReturnState.AWAITING_TAX,
    ReturnState.AWAITING_BUYER,
    ReturnState.COMPLETED,
    ReturnState.FAILED,
)
OPEN_STATES = (
    ReturnState.SUBMITTED,
    ReturnState.RECEIVED,
    ReturnState.PROCESSING,
    ReturnState.AWAITING_TAX,
    ReturnState.AWAITING_BUYER,
    ReturnState.FAILED,
)


class ReturnProblem(models.TextChoices):
    TITLE = "title", _("Invoice title")
    TYPE = "type", _("Invoice type")
    TAXPAYER_ID = "taxpayer_id", _("Taxpayer ID")
    ADDRESS = "address", _("Address or bank details")
    AMOUNT = "amount", _("Amount")
    OTHER = "other", _("Other")


class MailReceipt(models.Model):
    """Paper logged by finance when an envelope arrives (R4, R5).

    It may be logged before the customer submits online: it then waits, unmatched, and is
    matched when the return is submitted.
    """

    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="mail_receipts", verbose_name=_("invoice")
    )
    received_at = models.DateTimeField(_("received at"))
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("received by"),
    )
    courier = models.CharField(_("courier"), max_length=64, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True)
    invoice_form_present = models.BooleanField(_("invoice form present"))
    deduction_form_present = models.BooleanField(_("deduction form present"))
    undamaged = models.BooleanField(_("undamaged"))
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    # Paper that matched no open return, mailed back to the customer: it leaves the unmatched
    # paper queue and is never matched again.
    sent_back_at = models.DateTimeField(_("sent back at"), null=True, blank=True)
    sent_back_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sent back by"),
    )
    sent_back_courier = models.CharField(_("sent back with courier"), max_length=64, blank=True)
    sent_back_tracking_number = models.CharField(
        _("sent back with tracking number"), max_length=64, blank=True
    )

    class Meta:
        verbose_name = _("mail receipt")
        verbose_name_plural = _("mail receipts")
        ordering = ["-received_at", "-id"]
        permissions = [("log_mailreceipt", _("Can log a received paper invoice"))]
        indexes = [
            # Back-office search: the courier's tracking number, exact or by its beginning.
            models.Index(
                fields=["tracking_number"],
                name="mail_receipt_tracking_idx",
                opclasses=["varchar_pattern_ops"],
                condition=~Q(tracking_number=""),
            ),
            # The unmatched paper queue: what is still held, oldest first.
            models.Index(
                fields=["received_at", "id"],
                name="mail_receipt_held_idx",
                condition=Q(sent_back_at__isnull=True),
            ),
            models.Index(fields=["received_at", "id"], name="mail_receipt_order_idx"),
        ]
        constraints = [
            # Sent back: when, by whom and the courier's tracking number, all or nothing.
            models.CheckConstraint(
                condition=Q(
                    sent_back_at__isnull=True,
                    sent_back_by__isnull=True,
                    sent_back_courier="",
                    sent_back_tracking_number="",
                )
                | Q(sent_back_at__isnull=False, sent_back_by__isnull=False)
                & ~Q(sent_back_tracking_number=""),
                name="mail_receipt_sent_back_complete",
            )
        ]

    def __str__(self) -> str:
        return str(
            _("%(invoice)s received %(date)s")
            % {"invoice": self.invoice, "date": f"{self.received_at:%Y-%m-%d}"}
        )


class RejectionReason(models.Model):
    """A rejection reason finance picks instead of typing it again, worded in both languages;
    superusers keep the list. Never deleted once used (returns point to it): retire it instead."""

    text_en = models.CharField(_("text in English"), max_length=300)
    text_zh = models.CharField(_("text in Chinese"), max_length=300)
    active = models.BooleanField(
        _("offered"), default=True, help_text=_("Retired reasons stay on the returns they gave.")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("rejection reason")
        verbose_name_plural = _("rejection reasons")
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(text_en="") & ~Q(text_zh=""), name="rejection_reason_both_languages"
            )
        ]

    def __str__(self) -> str:
        return self.text_in(get_language() or "en")

    def text_in(self, language: str) -> str:
        """The reason as a reader of ``language`` reads it (Chinese for any ``zh`` variant)."""
        return self.text_zh if language.lower().startswith("zh") else self.text_en


class ReturnEnvelope(models.Model):
    """Several paper invoices a customer returns at once, mailed in one envelope: one return
    each (every rule holds per invoice), one reason, one courier and tracking number."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    courier = models.CharField(_("courier"), max_length=64, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("submitted at"), auto_now_add=True)

    class Meta:
        verbose_name = _("return envelope")
        verbose_name_plural = _("return envelopes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return str(_("Envelope #%(id)s") % {"id": self.pk})


class ReturnRequest(models.Model):
    # What the customer's return slip prints and the post room scans (``returns.references``).
    reference = models.CharField(
        _("reference"), max_length=16, unique=True, default=reference_new_now, editable=False
    )
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="return_requests", verbose_name=_("invoice")
    )
    # The invoice's code and number, copied when the return is made (``save``), as its medium
    # is: the returns list's search by invoice number finds the returns in their own index
    # (``return_invoice_number_idx``), not through every invoice that matches (issue 16, P5).
    # PostgreSQL refuses a copy that is not its invoice's (``return_invoice_copy_fk``, a
    # foreign key on the three columns, migration 0015) and carries a corrected number over;
    # ``check_ledger`` reports any disagreement on other databases too.
    invoice_code = models.CharField(_("invoice code"), max_length=12, blank=True, editable=False)
    invoice_number = models.CharField(_("invoice number"), max_length=20, editable=False)
    state = models.CharField(
        _("state"), max_length=16, choices=ReturnState.choices, default=ReturnState.SUBMITTED
    )
    problem = models.CharField(
        _("what was wrong"), max_length=16, choices=ReturnProblem.choices, default="other"
    )
    reason = models.CharField(_("reason"), max_length=500)
    reason_code = models.CharField(
        _("reason code"),
        max_length=16,
        choices=ReversalReason.choices,
        default=ReversalReason.ISSUING_ERROR,
        help_text=_("The reason code the tax system records for the void or reversal."),
    )
    medium = models.CharField(
        _("medium"),
        max_length=8,
        choices=InvoiceMedium.choices,
        default=InvoiceMedium.PAPER,
        help_text=_("The invoice's: a digital invoice is not mailed back."),
    )
    certified = models.BooleanField(
        _("certified"),
        default=False,
        help_text=_("Special invoices only: the buyer has certified it with the tax bureau."),
    )
    buyer_booked = models.BooleanField(
        _("booked or use confirmed"),
        default=False,
        help_text=_(
            "Digital invoices only: the buyer has booked it or confirmed its use (入账 / 用途确认)."
        ),
    )
    buyer_form_number = models.CharField(
        _("buyer's red-letter confirmation form"),
        max_length=20,
        blank=True,
        help_text=_("Digital invoices only: the form the buyer entered itself (20 digits)."),
    )
    courier = models.CharField(_("courier"), max_length=64, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True)
    mail_receipt = models.ForeignKey(
        MailReceipt,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="return_requests",
        verbose_name=_("mail receipt"),
    )
    tax_request = models.ForeignKey(
        TaxRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="return_requests",
        help_text=_("The request to the tax system that voids or reverses the invoice."),
        verbose_name=_("tax-system request"),
    )
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=ReturnOutcome.choices, blank=True
    )
    rejection_reason = models.CharField(_("rejection reason"), max_length=500, blank=True)
    # The listed reason finance picked and the text it added: ``rejection_reason`` holds the
    # two together, in the customer's language, for the portal and the SMS.
    rejection_choice = models.ForeignKey(
        RejectionReason,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("listed rejection reason"),
    )
    rejection_note = models.CharField(_("rejection note"), max_length=500, blank=True)
    error = models.TextField(_("processing error"), blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("submitted by"),
    )
    envelope = models.ForeignKey(
        ReturnEnvelope,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="returns",
        verbose_name=_("envelope"),
        help_text=_("Set when the customer returned several paper invoices in one envelope."),
    )
    created_at = models.DateTimeField(_("submitted at"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("return request")
        verbose_name_plural = _("return requests")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("reject_returnrequest", _("Can reject a return with a reason")),
            ("retry_returnrequest", _("Can retry a failed return")),
        ]
        indexes = [
            models.Index(fields=["state", "created_at"], name="return_state_idx"),
            # The back office's returns list in its default order (Meta.ordering), newest first.
            models.Index(fields=["-created_at", "-id"], name="return_order_idx"),
            # A search's matches (ids from the indexes below) sorted into the list's order
            # without visiting their rows: the ids with their creation time, index-only.
            models.Index(fields=["id"], name="return_id_created_idx", include=["created_at"]),
            # Back-office search by the invoice's number (exact or by its beginning) or code,
            # on the copies: the matching returns' ids read off the index alone (index-only
            # scans), without a join to the invoices.
            models.Index(
                fields=["invoice_number"],
                name="return_invoice_number_idx",
                opclasses=["varchar_pattern_ops"],
                include=["id"],
            ),
            models.Index(
                fields=["invoice_code"],
                name="return_invoice_code_idx",
                condition=~Q(invoice_code=""),
                include=["id"],
            ),
            # Back-office search: the courier's tracking number, exact or by its beginning.
            models.Index(
                fields=["tracking_number"],
                name="return_tracking_idx",
                opclasses=["varchar_pattern_ops"],
                condition=~Q(tracking_number=""),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(state__in=BLOCKING_STATES),
                name="return_one_open_per_invoice",
                violation_error_message=_("This invoice already has a return in progress."),
            ),
            models.UniqueConstraint(
                fields=["mail_receipt"],
                condition=Q(state__in=BLOCKING_STATES),
                name="return_one_open_per_mail_receipt",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="return_reason_not_empty"),
            models.CheckConstraint(
                condition=Q(reference__regex=REFERENCE_REGEX), name="return_reference_format"
            ),
            models.CheckConstraint(
                condition=Q(state=ReturnState.COMPLETED, outcome__in=["voided", "reversed"])
                | (~Q(state=ReturnState.COMPLETED) & Q(outcome="")),
                name="return_outcome_iff_completed",
            ),
            models.CheckConstraint(
                condition=~Q(state=ReturnState.REJECTED) | ~Q(rejection_reason=""),
                name="return_rejected_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(state__in=[ReturnState.SUBMITTED, ReturnState.CANCELLED])
                | Q(mail_receipt__isnull=False)
                | Q(state=ReturnState.REJECTED)
                | Q(certified=True)
                | Q(medium=InvoiceMedium.DIGITAL),
                name="return_past_submitted_has_paper",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=[ReturnState.AWAITING_TAX, ReturnState.AWAITING_BUYER])
                | Q(tax_request__isnull=False),
                name="return_awaiting_tax_has_request",
            ),
            # A digital invoice is not mailed and never voided; the paper questions are not
            # asked of it, nor its questions of paper.
            models.CheckConstraint(
                condition=Q(
                    medium=InvoiceMedium.DIGITAL,
                    certified=False,
                    mail_receipt__isnull=True,
                    courier="",
                    tracking_number="",
                )
                & ~Q(outcome=ReturnOutcome.VOIDED)
                & (Q(buyer_form_number="") | Q(buyer_form_number__regex=DIGITAL_FORM_REGEX))
                | Q(medium=InvoiceMedium.PAPER, buyer_booked=False, buyer_form_number="")
                & ~Q(state=ReturnState.AWAITING_BUYER),
                name="return_medium_fields",
            ),
            # Only paper that is mailed goes in an envelope: not a digital invoice, not a
            # certified special one (the buyer's form stands in for its paper).
            models.CheckConstraint(
                condition=Q(envelope__isnull=True) | Q(medium=InvoiceMedium.PAPER, certified=False),
                name="return_envelope_holds_mailed_paper",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Return #%(id)s") % {"id": self.pk})

    def save(self, *args, **kwargs) -> None:
        if self._state.adding and not self.invoice_number:
            self.invoice_code, self.invoice_number = self.invoice.code, self.invoice.number
        super().save(*args, **kwargs)


class ReturnEvent(models.Model):
    """One state change of a return: who, when, from, to, why (R11). Never edited."""

    return_request = models.ForeignKey(
        ReturnRequest,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=_("return request"),
        # return_event_idx (return_request, id) serves every look-up by return: a second index
        # of the column alone only cost each event's insert a write (issue 16).
        db_index=False,
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty when the system acted (the processing task)."),
        verbose_name=_("by"),
    )
    from_state = models.CharField(
        max_length=16, choices=ReturnState.choices, blank=True, verbose_name=_("from state")
    )
    to_state = models.CharField(
        max_length=16, choices=ReturnState.choices, verbose_name=_("to state")
    )
    actor_kind = models.CharField(
        _("actor type"), max_length=8, choices=ActorKind.choices, default=ActorKind.SYSTEM
    )
    # Text a person typed, kept as typed; rows older than the message keys hold their note as
    # it was worded then (in the customer's language), and show it so.
    note = models.CharField(_("why"), max_length=500, blank=True)
    # What the system says: a message key and its parameters, worded when shown, in the
    # reader's language (returns/messages.py).
    note_key = models.CharField(_("message key"), max_length=64, blank=True)
    note_params = models.JSONField(
        _("message parameters"), default=dict, blank=True, encoder=DjangoJSONEncoder
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("at"))

    class Meta:
        verbose_name = _("return event")
        verbose_name_plural = _("return events")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["return_request", "id"], name="return_event_idx")]

    def __str__(self) -> str:
        return f"{self.from_state or '-'} → {self.to_state}"

    @property
    def text(self) -> str:
        """The note in the reader's (active) language: the system's words, then what a person
        typed, as typed."""
        worded = message_render(self.note_key, self.note_params) if self.note_key else ""
        return " ".join(part for part in (worded, self.note) if part)


class FormReviewState(models.TextChoices):
    PENDING = "pending", _("Awaiting review")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    REPLACED = "replaced", _("Replaced")
    WITHDRAWN = "withdrawn", _("Withdrawn")  # its return was cancelled or rejected unreviewed


def red_letter_form_path(instance: "RedLetterForm", filename: str) -> str:
    # The stored name never uses the customer's file name (it is not trusted).
    return f"red-letter-forms/{instance.return_request_id}/{instance.sha256}{instance.extension}"


class RedLetterForm(models.Model):
    """A scan of the tax bureau's red-letter information form (R3), reviewed by staff."""

    return_request = models.ForeignKey(
        ReturnRequest,
        on_delete=models.PROTECT,
        related_name="red_letter_forms",
        verbose_name=_("return request"),
    )
    file = models.FileField(
        upload_to=red_letter_form_path, storage=private_storage, verbose_name=_("scan")
    )
    content_type = models.CharField(max_length=64, verbose_name=_("file type"))
    size = models.PositiveIntegerField(verbose_name=_("size (bytes)"))
    sha256 = models.CharField(max_length=64, verbose_name=_("SHA-256"))
    form_number = models.CharField(_("form number"), max_length=32)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    review_state = models.CharField(
        max_length=16,
        choices=FormReviewState.choices,
        default=FormReviewState.PENDING,
        verbose_name=_("review state"),
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewer"),
    )
    reviewed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("reviewed at"))
    review_reason = models.CharField(_("review reason"), max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("uploaded at"))

    class Meta:
        verbose_name = _("red-letter form")
        verbose_name_plural = _("red-letter forms")
        ordering = ["created_at", "id"]
        permissions = [("review_redletterform", _("Can approve or reject a red-letter form"))]
        constraints = [
            models.UniqueConstraint(
                fields=["return_request"],
                condition=Q(review_state__in=["pending", "approved"]),
                name="red_letter_form_one_current_per_return",
            ),
            models.CheckConstraint(
                condition=~Q(review_state="rejected") | ~Q(review_reason=""),
                name="red_letter_form_rejection_has_reason",
            ),
            models.CheckConstraint(condition=~Q(form_number=""), name="red_letter_form_number"),
        ]

    def __str__(self) -> str:
        return str(
            _("Form %(number)s of return #%(id)s")
            % {"number": self.form_number, "id": self.return_request_id}
        )

    @property
    def extension(self) -> str:
        return {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}.get(
            self.content_type, ""
        )
