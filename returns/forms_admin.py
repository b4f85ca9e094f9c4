"""Forms of the finance back office (admin pages). They parse input; services do the work."""

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from invoices.forms_admin import CodeAndNumberField


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
