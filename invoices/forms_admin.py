"""Back-office form fields for invoices (admin pages); parsing only, services do the work."""

from django import forms
from django.utils.translation import gettext_lazy as _

from invoices.codes import InvalidCodeAndNumber, parse_code_and_number


class CodeAndNumberField(forms.CharField):
    """One field for the invoice code and number: typed with a space, or scanned as one run."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("label", _("Invoice code and number"))
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault(
            "help_text",
            _("Code (10 or 12 digits) and number (8 digits): type them or scan the barcode."),
        )
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"autofocus": True, "autocomplete": "off", "size": 30}),
        )
        super().__init__(**kwargs)

    def clean(self, value) -> tuple[str, str]:
        value = super().clean(value)
        try:
            return parse_code_and_number(value)
        except InvalidCodeAndNumber as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class InvoiceIssueForm(forms.Form):
    code_and_number = CodeAndNumberField()
    courier = forms.CharField(label=_("Courier"), max_length=64)
    tracking_number = forms.CharField(label=_("Tracking number"), max_length=64)
