"""Forms of the finance back office (admin pages). They parse input; services do the work."""

from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.exceptions import DomainError
from invoices.models import BuyerDecision, InvoiceMedium, TaxOperation, TaxRequest
from invoices.tax import TaxBreakdown
from invoices.taxsystem.interface import RedLetterIssued, TaxResult, TaxSubmission
from returns.scans import Scan, scan_parse


class ScanField(forms.CharField):
    """The post room's scan field: a return slip's reference, an invoice code and number, or
    the QR code printed on the paper invoice, as a scanner types it (``returns.scans``).
    Cleans to a ``Scan``, or None when empty (an envelope already holding invoices is saved
    with the field empty)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("label", _("Invoice code and number"))
        kwargs.setdefault("max_length", 200)
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            _(
                "Scan the return slip or the QR code on the invoice, or type the code (10 or 12 "
                "digits) and number (8 digits). Enter moves on to the parts."
            ),
        )
        kwargs.setdefault(
            "widget",
            forms.TextInput(
                attrs={"autofocus": True, "autocomplete": "off", "size": 50, "spellcheck": "false"}
            ),
        )
        super().__init__(**kwargs)

    def clean(self, value) -> Scan | None:
        text = super().clean(value)
        if not text:
            return None
        try:
            return scan_parse(text)
        except DomainError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class MailReceiptLogForm(forms.Form):
    """One envelope, in keyboard order: scan (the scanner's Enter moves on to the parts, see
    the template), tick the parts that are there, then the courier; Enter there saves. To put
    another invoice in the same envelope, Enter on a part (or "Add another invoice to this
    envelope") keeps this one in the envelope and empties the scan field for the next one;
    the envelope's invoices travel with the form (``envelope``), re-read on every post."""

    code_and_number = ScanField()
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

    ENVELOPE_FIELDS = ("courier", "tracking_number", "received_at", "notes")

    def ask_for_parts(self) -> None:
        """A scanned invoice with none of its parts ticked has not been looked at yet (Enter
        reached the server before the page's script, or there is no script): saving it would
        reject its return as incomplete. Ask for the parts, with the focus on the first."""
        self.add_error(
            "invoice_form_present",
            _("Tick what came of this invoice (its forms, undamaged), then save."),
        )
        self.fields["code_and_number"].widget.attrs.pop("autofocus", None)
        self.fields["invoice_form_present"].widget.attrs["autofocus"] = True


@dataclass(frozen=True)
class EnvelopeLine:
    """An invoice already in the envelope being logged: the scan as typed, and its parts."""

    text: str
    invoice_form_present: bool
    deduction_form_present: bool
    undamaged: bool

    @property
    def any_part_present(self) -> bool:
        """Whether finance ticked anything of this invoice (nothing: not looked at yet)."""
        return self.invoice_form_present or self.deduction_form_present or self.undamaged

    @property
    def posted(self) -> str:
        """The hidden field's value: three flags, a bar, the scan."""
        flags = (self.invoice_form_present, self.deduction_form_present, self.undamaged)
        return "".join("1" if flag else "0" for flag in flags) + "|" + self.text


def envelope_lines(values: list[str]) -> list[EnvelopeLine]:
    """The envelope's lines as posted (``EnvelopeLine.posted``); anything else is dropped."""
    lines = []
    for value in values[:50]:
        flags, _bar, text = value.partition("|")
        if len(flags) == 3 and set(flags) <= {"0", "1"} and text.strip():
            lines.append(EnvelopeLine(text.strip()[:200], *(flag == "1" for flag in flags)))
    return lines


class SendBackForm(forms.Form):
    """Unmatched paper mailed back to the customer: the courier and its tracking number."""

    courier = forms.CharField(label=_("Courier"), max_length=64, required=False)
    tracking_number = forms.CharField(
        label=_("Tracking number"),
        max_length=64,
        error_messages={
            "required": _(
                "Enter the courier's tracking number of the envelope sent back to the customer."
            )
        },
    )


class FormReviewForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        required=False,
        help_text=_("Required to reject: the customer sees it."),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


def _digits_only(value: str) -> str:
    """A number as copied from the platform, with its spaces taken out ("4403 2626 …")."""
    return "".join(value.split())


def _number_input() -> forms.TextInput:
    return forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"})


class TaxOutcomeForm(forms.Form):
    """What the tax system did with one request, as finance reads it there (manual backend).

    A void asks for its date. A red-letter invoice asks for its code, number and date and the
    figures as printed, pre-filled with the original's figures negated so that the clerk
    confirms them; when the seller filed the red-letter information form, its number too.
    A digital red-letter invoice has no code (the field is not offered) and a 20-digit
    number; it carries the red-letter confirmation form, whose 20-digit number is asked when
    finance entered the form now (the buyer's, or one awaiting the buyer, is on the request).
    Parsing only: ``return_request_record_outcome`` checks the entry against the original.
    """

    def __init__(self, *args, submission: TaxSubmission, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.submission = submission
        original = submission.original
        self.digital = original.medium == InvoiceMedium.DIGITAL
        date_widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        if submission.operation == TaxOperation.VOID:
            self.fields["voided_on"] = forms.DateField(label=_("Voided on"), widget=date_widget)
            return
        figures = TaxBreakdown(
            original.amount, original.tax_rate, original.tax, original.total
        ).negated()
        if self.digital and not submission.red_letter_form_number:
            self.fields["red_letter_form_number"] = forms.CharField(
                label=_("Red-letter confirmation form number"),
                max_length=40,
                help_text=_(
                    "The 20 digits the e-tax platform gave the red-letter confirmation form "
                    "you entered."
                ),
                error_messages={
                    "required": _(
                        "Enter the 20-digit number of the red-letter confirmation form entered."
                    )
                },
                widget=_number_input(),
            )
        if not self.digital:
            self.fields["code"] = forms.CharField(
                label=_("Red-letter invoice code"), max_length=12, widget=_number_input()
            )
        self.fields["number"] = forms.CharField(
            label=_("Red-letter invoice number"),
            max_length=40 if self.digital else 8,
            help_text=_("20 digits; a digital red-letter invoice has no code.")
            if self.digital
            else "",
            widget=_number_input(),
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
                widget=_number_input(),
            )

    def clean_red_letter_form_number(self) -> str:
        return _digits_only(self.cleaned_data["red_letter_form_number"])

    def clean_number(self) -> str:
        number: str = self.cleaned_data["number"]
        return _digits_only(number) if self.digital else number

    def result(self) -> TaxResult:
        """The entry as the tax system's result for this request (call after ``is_valid``)."""
        data = self.cleaned_data
        serial = self.submission.serial
        if self.submission.operation == TaxOperation.VOID:
            return TaxResult.voided(serial, on=data["voided_on"])
        return TaxResult.reversed(
            serial,
            RedLetterIssued(
                code=data.get("code", ""),
                number=data["number"],
                issued_on=data["issued_on"],
                amount=data["amount"],
                tax_rate=self.submission.original.tax_rate,
                tax=data["tax"],
                total=data["total"],
                red_letter_form_number=data.get("red_letter_form_number", ""),
            ),
        )


class BuyerDecisionForm(TaxOutcomeForm):
    """What became of a red-letter confirmation form that awaited the buyer, as finance found
    it on the e-tax platform: confirmed (the platform issued the red-letter invoice at once:
    its number, date and figures as printed), refused, or lapsed after 72 hours. A lapse is
    offered only once the deadline has passed (``lapse_offered``, from the rule). Parsing
    only: the services check the entry and the deadline."""

    RED_LETTER_FIELDS = ("number", "issued_on", "amount", "tax", "total")

    def __init__(self, *args, submission: TaxSubmission, lapse_offered: bool, **kwargs) -> None:
        super().__init__(*args, submission=submission, **kwargs)
        choices = [
            (BuyerDecision.CONFIRMED, _("Confirmed: the platform issued the red-letter invoice")),
            (BuyerDecision.REFUSED, _("Refused by the buyer")),
        ]
        if lapse_offered:
            choices.append(
                (BuyerDecision.EXPIRED, _("Not confirmed within 72 hours: the form lapsed"))
            )
        self.fields["decision"] = forms.ChoiceField(
            label=_("The buyer's decision"),
            choices=choices,
            widget=forms.RadioSelect,
            help_text=_(
                "Check the form on the e-tax platform first: a confirmation, even at the last "
                "minute, issues the red-letter invoice at once (确认即开票)."
            ),
        )
        for name in self.RED_LETTER_FIELDS:
            self.fields[name].required = False
        self.fields["number"].help_text = _(
            "When confirmed: the red-letter invoice the platform issued (20 digits, no code)."
        )
        self.order_fields(["decision"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        if data.get("decision") == BuyerDecision.CONFIRMED:
            for name in self.RED_LETTER_FIELDS:
                if name not in self.errors and data.get(name) in (None, ""):
                    self.add_error(
                        name,
                        _("Required when the buyer confirmed: as the red-letter invoice prints."),
                    )
        return data


class ConfirmationFormEntryForm(forms.Form):
    """The red-letter confirmation form finance entered on the e-tax platform for a booked
    digital invoice: its number, and when it was entered (the buyer's 72 hours run from
    then). Parsing only: ``return_request_await_buyer`` checks both."""

    form_number = forms.CharField(
        label=_("Red-letter confirmation form number"),
        max_length=40,
        help_text=_("The 20 digits the e-tax platform gave the form."),
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "off", "inputmode": "numeric"}
        ),
    )
    entered_at = forms.DateTimeField(
        label=_("Entered at"),
        initial=timezone.now,
        help_text=_("Beijing time, as the platform shows it: the buyer has 72 hours from then."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_form_number(self) -> str:
        return _digits_only(self.cleaned_data["form_number"])


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
            if red.code:  # a digital red-letter invoice has none: its 20-digit number alone
                self.fields["code"] = forms.CharField(
                    label=_("Red-letter invoice code"), max_length=12, initial=red.code
                )
            self.fields["number"] = forms.CharField(
                label=_("Red-letter invoice number"),
                max_length=8 if red.code else 20,
                initial=red.number,
            )
            self.fields["issued_on"] = forms.DateField(
                label=_("Issue date"), widget=date_widget, initial=red.issued_on
            )
        self.order_fields([name for name in self.fields if name != "reason"] + ["reason"])
