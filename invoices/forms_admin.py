"""Back-office form fields for invoices (admin pages); parsing only, services do the work."""

from django import forms
from django.utils.translation import gettext_lazy as _

from invoices.codes import InvalidCodeAndNumber, parse_code_and_number
from invoices.services import DOCUMENT_MAX_BYTES


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


class DigitalInvoiceIssueForm(forms.Form):
    """A digital invoice (数电票) finance issued on the e-tax platform: its 20-digit number (no
    code: the field has none) and its file as the platform delivered it, PDF or OFD. Nothing
    is mailed. Parsing only: ``invoice_issue`` checks the number and the file's content."""

    number = forms.CharField(
        label=_("Invoice number"),
        max_length=40,
        help_text=_("The 20 digits the e-tax platform printed; a digital invoice has no code."),
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "off", "inputmode": "numeric", "size": 30}
        ),
    )
    document = forms.FileField(
        label=_("Invoice file"),
        error_messages={"required": _("Attach the digital invoice's file (PDF or OFD).")},
        widget=forms.FileInput(attrs={"accept": ".pdf,.ofd"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Formatted here, in the language of the request (a lazy string would be formatted once).
        self.fields["document"].help_text = _(
            "The PDF or OFD file downloaded from the e-tax platform, at most %(size)d MB. "
            "After an error, choose the file again: a browser never keeps a chosen file."
        ) % {"size": DOCUMENT_MAX_BYTES // (1024 * 1024)}

    def clean_number(self) -> str:
        return "".join(self.cleaned_data["number"].split())  # "2633 2000 …" as printed

    def document_content(self) -> tuple[bytes, str]:
        """The file's bytes and name (after ``is_valid``). At most one byte over the limit is
        read: ``invoice_issue`` refuses a file that is too large, and a huge one is not read
        into memory to find that out."""
        upload = self.cleaned_data["document"]
        return upload.read(DOCUMENT_MAX_BYTES + 1), upload.name or ""
