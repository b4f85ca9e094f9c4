"""Forms of the finance back office (admin pages). They parse input; services do the work."""

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from invoices.forms_admin import CodeAndNumberField
from invoices.models import TaxOperation, TaxRequest
from invoices.tax import TaxBreakdown
from invoices.taxsystem.interface import RedLetterIssued, TaxResult, TaxSubmission


class MailReceiptLogForm(forms.Form):
    """In keyboard order: scan (the scanner's Enter moves on to the checkboxes, see the
    template), tick the parts that are there, then the courier; Enter there saves."""

    code_and_number = CodeAndNumberField()
    invoice_form_present = forms.BooleanField(label=_("Invoice form present"), required=False)
    deduction_form_present = forms.BooleanField(
        label=_("Deduction form present"),
        required=False,
        help_text=_("VAT special invoices only: ignored for ordinary invoices."),
    )
    undamaged = forms.BooleanField(label=_("Undamaged"), required=False)
    courier = forms.CharField(label=_("Courier"), max_length=64, required=False)
    tracking_number = forms.CharField(label=_("Tracking number"), max_length=64, required=False)
    received_at = forms.DateTimeField(
        label=_("Received at"),
        initial=timezone.now,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60})
    )


class FormReviewForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        required=False,
        help_text=_("Required to reject: the customer sees it."),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


class TaxOutcomeForm(forms.Form):
    """What the tax system did with one request, as finance reads it there (manual backend).

    A void asks for its date. A red-letter invoice asks for its code, number and date and the
    figures as printed, pre-filled with the original's figures negated so that the clerk
    confirms them; when the seller filed the red-letter information form, its number too.
    Parsing only: ``return_request_record_outcome`` checks the entry against the original.
    """

    def __init__(self, *args, submission: TaxSubmission, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.submission = submission
        date_widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        if submission.operation == TaxOperation.VOID:
            self.fields["voided_on"] = forms.DateField(label=_("Voided on"), widget=date_widget)
            return
        original = submission.original
        figures = TaxBreakdown(
            original.amount, original.tax_rate, original.tax, original.total
        ).negated()
        self.fields["code"] = forms.CharField(
            label=_("Red-letter invoice code"),
            max_length=12,
            widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
        )
        self.fields["number"] = forms.CharField(
            label=_("Red-letter invoice number"),
            max_length=8,
            widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
        )
        self.fields["issued_on"] = forms.DateField(label=_("Issue date"), widget=date_widget)
        for name, label, value in (
            ("amount", _("Amount"), figures.amount),
            ("tax", _("Tax"), figures.tax),
            ("total", _("Total"), figures.total),
        ):
            self.fields[name] = forms.DecimalField(
                label=label, max_digits=14, decimal_places=2, initial=value
            )
        self.fields["total"].help_text = _(
            "Amount, tax and total as printed on the red-letter invoice: the original's, negated."
        )
        if submission.seller_files_form:
            self.fields["red_letter_form_number"] = forms.CharField(
                label=_("Red-letter information form number"),
                max_length=40,
                help_text=_("The 16 digits the tax system gave the form the seller filed."),
                error_messages={
                    "required": _(
                        "Enter the 16-digit number of the red-letter information form the "
                        "seller filed."
                    )
                },
                widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
            )

    def clean_red_letter_form_number(self) -> str:
        return "".join(self.cleaned_data["red_letter_form_number"].split())  # "4403 2626 …"

    def result(self) -> TaxResult:
        """The entry as the tax system's result for this request (call after ``is_valid``)."""
        data = self.cleaned_data
        serial = self.submission.serial
        if self.submission.operation == TaxOperation.VOID:
            return TaxResult.voided(serial, on=data["voided_on"])
        return TaxResult.reversed(
            serial,
            RedLetterIssued(
                code=data["code"],
                number=data["number"],
                issued_on=data["issued_on"],
                amount=data["amount"],
                tax_rate=self.submission.original.tax_rate,
                tax=data["tax"],
                total=data["total"],
                red_letter_form_number=data.get("red_letter_form_number", ""),
            ),
        )


class TaxOutcomeCorrectionForm(forms.Form):
    """An admin reviewer's correction of a mistyped outcome: the corrected code, number or
    date (pre-filled with what is recorded) and why. Parsing only: the service validates."""

    reason = forms.CharField(
        label=_("Why is it corrected?"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=_("Kept in the audit trail and shown in the customer's timeline."),
    )

    def __init__(self, *args, tax_request: TaxRequest, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        date_widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        red = tax_request.red_letter_invoice
        if red is None:
            self.fields["voided_on"] = forms.DateField(
                label=_("Voided on"), widget=date_widget, initial=tax_request.voided_on
            )
        else:
            self.fields["code"] = forms.CharField(
                label=_("Red-letter invoice code"), max_length=12, initial=red.code
            )
            self.fields["number"] = forms.CharField(
                label=_("Red-letter invoice number"), max_length=8, initial=red.number
            )
            self.fields["issued_on"] = forms.DateField(
                label=_("Issue date"), widget=date_widget, initial=red.issued_on
            )
        self.order_fields([name for name in self.fields if name != "reason"] + ["reason"])
