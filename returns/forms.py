"""Portal forms: they check the shape of what the customer typed; the services decide the rest.

Domain errors raised by a service are put back on the form (``add_domain_error``) so the page
re-renders with everything the customer entered and the message next to the right field.
"""

from typing import Any, cast

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core.exceptions import DomainError
from invoices.models import InvoiceMedium, InvoiceType, NotifyBy, ReversalReason
from invoices.services import money
from invoices.tax import money_as_written
from invoices.taxpayer import validate_taxpayer_id
from invoices.taxsystem.services import is_form_number
from returns.models import ReturnProblem
from returns.rules import invoice_can_be_booked, invoice_can_be_certified

REASON_MAX = 500
YES_NO = [("yes", _("Yes")), ("no", _("No"))]
# The same words as the service's refusal (returns.services.red_letter_forms._check_form_number).
FORM_NUMBER_SHAPE = _(
    "The red-letter information form number is the 16 digits the tax system gave."
)
FORM_NUMBER_HELP = _("The 16 digits the tax system printed on the form; spaces are ignored.")


# The same words as the service's refusal (returns.services.submission.return_request_submit).
CONFIRMATION_FORM_NUMBER_SHAPE = _(
    "A red-letter confirmation form number is 20 digits: check the number."
)


def form_number_field(*, required: bool) -> forms.CharField:
    """The red-letter information form number, typed as printed ("4403 2626 0001 2345")."""
    return PortalCharField(
        label=_("Red-letter information form number"),
        max_length=32,
        required=required,
        help_text=FORM_NUMBER_HELP,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"}
        ),
    )


def clean_form_number(value: str) -> str:
    """Check the shape where the customer typed it, so the message sits next to the number
    (the service checks again and is the authority): spaces go, 16 digits must remain."""
    digits = "".join((value or "").split())
    if digits and not is_form_number(digits):
        raise forms.ValidationError(FORM_NUMBER_SHAPE)
    return digits


def clean_confirmation_form_number(value: str) -> str:
    """The red-letter confirmation form number of a digital invoice, as the buyer read it out:
    spaces go, 20 digits must remain (the service checks again)."""
    digits = "".join((value or "").split())
    if digits and not is_form_number(digits, InvoiceMedium.DIGITAL):
        raise forms.ValidationError(CONFIRMATION_FORM_NUMBER_SHAPE)
    return digits


def _copied(obj: Any) -> Any:
    """``copy.copy(obj)`` for a form field or widget, whose state is their ``__dict__`` alone:
    without the generic ``__reduce_ex__`` round ``copy.copy`` takes for objects that have no
    ``__copy__`` (issue 16, P1)."""
    cls: Any = type(obj)
    new = cls.__new__(cls)
    new.__dict__.update(obj.__dict__)
    return new


class PortalField(forms.Field):
    """A field copied for each form made as Django copies it (``Field.__deepcopy__``: the
    field, its widget and the widget's attributes, its messages and validators: nothing one
    form changes reaches another), more cheaply: the Refund form copies up to eight fields on
    every POST (issue 16, P1)."""

    def __deepcopy__(self, memo: dict) -> Any:
        result = _copied(self)
        memo[id(self)] = result
        result.widget = _copied(self.widget)
        result.widget.attrs = self.widget.attrs.copy()
        memo[id(self.widget)] = result.widget
        result.error_messages = self.error_messages.copy()
        result.validators = self.validators[:]
        return result


class PortalCharField(PortalField, forms.CharField):
    pass


class PortalFileField(PortalField, forms.FileField):
    pass


class FixedChoiceField(PortalField, forms.ChoiceField):
    """A ChoiceField whose choices are fixed where the form is defined (an enumeration's).

    Django copies a ChoiceField's choices with the field for each form made, twice (the
    field's, then its widget's, normalised again): most of the Refund form's set-up (issue 16,
    P1). Here each form gets a field and a widget of its own (``PortalField``) sharing the list
    of choices, which nothing changes in place (new choices are assigned, as ``choices = …``
    does)."""


class PortalForm(forms.Form):
    #: Which field a domain error belongs to, by exception class name; None = the whole form.
    error_fields: dict[str, str] = {}

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def add_domain_error(self, exc: DomainError) -> None:
        field = self.error_fields.get(type(exc).__name__)
        self.add_error(field if field in self.fields else None, str(exc))


class RefundForm(PortalForm):
    problem = FixedChoiceField(
        label=_("What was wrong"),
        choices=ReturnProblem.choices,
        initial=ReturnProblem.OTHER,
        widget=forms.RadioSelect,
    )
    reason_code = FixedChoiceField(
        label=_("Reason code for the tax system"),
        choices=ReversalReason.choices,
        initial=ReversalReason.ISSUING_ERROR,
        error_messages={
            "required": _("Choose the reason code for the tax system."),
            "invalid_choice": _("Choose the reason code for the tax system."),
        },
    )
    reason = PortalCharField(
        label=_("Reason"),
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "required": _("Please say why you are returning this invoice."),
            "max_length": _(
                "The reason is %(show_value)d characters long; at most %(limit_value)d are allowed."
            ),
        },
    )
    certified = FixedChoiceField(
        label=_("Has this invoice been certified?"),
        choices=YES_NO,
        widget=forms.RadioSelect,
        required=False,
        help_text=_(
            "Certified: the buyer has selected this invoice for VAT deduction in the tax "
            "system. Your answer decides what you send us."
        ),
    )
    red_letter_form = PortalFileField(
        label=_("Red-letter information form (PDF, JPEG or PNG, at most 10 MB)"),
        required=False,
        allow_empty_file=True,  # the service says "The file is empty." in the customer's words
    )
    red_letter_form_number = form_number_field(required=False)
    buyer_booked = FixedChoiceField(
        label=_("Has the buyer booked this invoice or confirmed its use (入账 / 用途确认)?"),
        choices=YES_NO,
        widget=forms.RadioSelect,
        help_text=_(
            "Booked (入账): entered in the buyer's accounts; use confirmed (用途确认): selected "
            "on the e-tax platform, e.g. for deduction. Then the buyer confirms the reversal."
        ),
        error_messages={
            "required": _("Please answer: has the buyer booked this invoice or confirmed its use?")
        },
    )
    buyer_form_number = PortalCharField(
        label=_("Red-letter confirmation form number (if the buyer already entered one)"),
        max_length=40,
        required=False,
        help_text=_(
            "Optional: the 20 digits of the form on the e-tax platform; spaces are ignored."
        ),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    courier = PortalCharField(label=_("Courier"), max_length=64, required=False)
    tracking_number = PortalCharField(label=_("Tracking number"), max_length=64, required=False)

    error_fields = {
        "InvalidUpload": "red_letter_form",
        "InvalidReturnReason": "reason",
    }

    def __init__(self, *args, invoice, **kwargs) -> None:
        # Only the questions this invoice asks: Django deep-copies a form's fields for each
        # form made, so those it does not ask are left out before (issue 16, P1).
        unasked: tuple[str, ...]
        if invoice_can_be_booked(invoice):
            # A digital invoice is not mailed back and was never certified: the buyer's books
            # decide instead (R3, R4).
            unasked = ("courier", "tracking_number")
        else:
            unasked = ("buyer_booked", "buyer_form_number")
        if not invoice_can_be_certified(invoice):
            unasked += ("certified", "red_letter_form", "red_letter_form_number")
        # An instance attribute: BaseForm.__init__ copies self.base_fields, the class keeps all.
        self.base_fields = {  # type: ignore[misc]
            name: field for name, field in type(self).base_fields.items() if name not in unasked
        }
        super().__init__(*args, **kwargs)
        self.invoice = invoice
        if invoice_can_be_certified(invoice):
            self.fields["certified"].required = True
            self.fields["certified"].error_messages["required"] = _(
                "Please answer: has this invoice been certified?"
            )

    def clean_buyer_form_number(self) -> str:
        return clean_confirmation_form_number(self.cleaned_data["buyer_form_number"])

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if invoice_can_be_certified(self.invoice) and data.get("certified") == "yes":
            if not data.get("red_letter_form"):
                self.add_error(
                    "red_letter_form",
                    _("A certified special invoice needs the red-letter information form scan."),
                )
            # Only when certified: a number typed and then hidden by answering "no" is ignored.
            number = data.get("red_letter_form_number", "")
            try:
                data["red_letter_form_number"] = clean_form_number(number)
            except forms.ValidationError as exc:
                self.add_error("red_letter_form_number", exc)
            else:
                if not data["red_letter_form_number"]:
                    self.add_error(
                        "red_letter_form_number",
                        _("Enter the red-letter information form number."),
                    )
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {
            "reason": data["reason"],
            "reason_code": data["reason_code"],
            "problem": data["problem"],
        }
        if invoice_can_be_booked(self.invoice):
            kwargs["buyer_booked"] = data["buyer_booked"] == "yes"
            kwargs["buyer_form_number"] = data.get("buyer_form_number", "")
        else:
            kwargs["courier"] = data.get("courier", "")
            kwargs["tracking_number"] = data.get("tracking_number", "")
        if invoice_can_be_certified(self.invoice):
            certified = data.get("certified") == "yes"
            kwargs["certified"] = certified
            if certified:
                kwargs["red_letter_form"] = data.get("red_letter_form")
                kwargs["red_letter_form_number"] = data.get("red_letter_form_number", "")
        return kwargs


class TrackingForm(PortalForm):
    courier = forms.CharField(label=_("Courier"), max_length=64, required=False)
    tracking_number = forms.CharField(label=_("Tracking number"), max_length=64)


class RedLetterFormUploadForm(PortalForm):
    upload = forms.FileField(
        label=_("Red-letter information form (PDF, JPEG or PNG, at most 10 MB)"),
        allow_empty_file=True,
    )
    form_number = form_number_field(required=True)

    error_fields = {"InvalidUpload": "upload"}

    def clean_form_number(self) -> str:
        return clean_form_number(self.cleaned_data["form_number"])


# Digital first: the normal invoice since 2024-12 (数电票).
MEDIUM_CHOICES = [
    (InvoiceMedium.DIGITAL, _("Digital invoice (数电票): download it here, nothing is mailed")),
    (InvoiceMedium.PAPER, _("Paper invoice: printed and mailed to you")),
]
MAILING_FIELDS = ("mailing_recipient", "mailing_phone", "mailing_address", "mailing_postal_code")


class ReturnEnvelopeForm(PortalForm):
    """Several paper invoices returned in one envelope: which, why, how it was sent."""

    invoices = forms.TypedMultipleChoiceField(
        label=_("Invoices in the envelope"),
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Choose the invoices you are mailing back."),
            "invalid_choice": _(
                "An invoice you chose cannot be returned in an envelope (it may have just been "
                "returned): check the list."
            ),
        },
    )
    problem = RefundForm.declared_fields["problem"]
    reason_code = RefundForm.declared_fields["reason_code"]
    reason = RefundForm.declared_fields["reason"]
    none_certified = forms.BooleanField(
        label=_("The buyer certified none of the VAT special invoices I chose"),
        required=False,
        help_text=_(
            "A certified special invoice is not mailed: return it on its own with Refund and the "
            "buyer's red-letter information form."
        ),
    )
    courier = RefundForm.declared_fields["courier"]
    tracking_number = RefundForm.declared_fields["tracking_number"]

    def __init__(self, *args, invoices: list, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.TypedMultipleChoiceField, self.fields["invoices"])
        field.choices = [
            (
                invoice.pk,
                f"{invoice.number} · {invoice.issued_at:%Y-%m-%d} · "
                f"{invoice.get_invoice_type_display()} · {money_as_written(invoice.total)}",
            )
            for invoice in invoices
        ]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "invoice_ids": data["invoices"],
            "problem": data["problem"],
            "reason_code": data["reason_code"],
            "reason": data["reason"],
            "none_certified": data["none_certified"],
            "courier": data.get("courier", ""),
            "tracking_number": data.get("tracking_number", ""),
        }


class ApplyForm(PortalForm):
    medium = forms.ChoiceField(
        label=_("Digital or paper"),
        choices=MEDIUM_CHOICES,
        initial=InvoiceMedium.DIGITAL,
        widget=forms.RadioSelect,
        # A page loaded before digital invoices existed posts no medium, with an address to
        # mail the paper to: it meant paper (``clean_medium``).
        required=False,
    )
    invoice_type = forms.ChoiceField(
        label=_("Invoice type"),
        choices=InvoiceType.choices,
        initial=InvoiceType.ORDINARY,
        widget=forms.RadioSelect,
    )
    amount = forms.CharField(
        label=_("Amount (yuan)"),
        max_length=20,
        help_text=_("The invoice's total, tax included: it prints as amount before tax plus tax."),
    )
    title = forms.CharField(label=_("Invoice title"), max_length=200)
    taxpayer_id = forms.CharField(label=_("Taxpayer ID"), max_length=24, required=False)
    registered_address = forms.CharField(
        label=_("Registered address"), max_length=200, required=False
    )
    registered_phone = forms.CharField(label=_("Registered phone"), max_length=40, required=False)
    bank_name = forms.CharField(label=_("Bank"), max_length=200, required=False)
    bank_account = forms.CharField(label=_("Bank account"), max_length=64, required=False)
    email = forms.EmailField(
        label=_("Email address (optional)"),
        max_length=254,
        required=False,
        help_text=_("We also email the digital invoice to this address."),
    )
    # Required for a paper invoice only (``clean``); the service checks again.
    mailing_recipient = forms.CharField(label=_("Recipient"), max_length=100, required=False)
    mailing_phone = forms.CharField(label=_("Recipient phone"), max_length=40, required=False)
    mailing_address = forms.CharField(label=_("Mailing address"), max_length=300, required=False)
    mailing_postal_code = forms.CharField(label=_("Postal code"), max_length=10, required=False)
    save_profile = forms.BooleanField(label=_("Save these details as a profile"), required=False)
    profile_name = forms.CharField(label=_("Profile name"), max_length=100, required=False)

    error_fields = {
        "InsufficientInvoiceableAmount": "amount",
        "InvalidTaxpayerId": "taxpayer_id",
    }

    def mark_wrong(self, fields: tuple[str, ...], *, invoice_number: str) -> None:
        """Mark the fields the customer said were wrong on a returned invoice: a class the
        stylesheet shows and a hint the field's description carries (not an error: the
        customer has not typed anything yet)."""
        for name in fields:
            field = self.fields[name]
            css = field.widget.attrs.get("class", "")
            field.widget.attrs["class"] = f"{css} marked-wrong".strip()
            field.help_text = _("You said this was wrong on invoice %(number)s: check it.") % {
                "number": invoice_number
            }

    def clean_medium(self) -> str:
        return self.cleaned_data["medium"] or InvoiceMedium.PAPER

    def clean_amount(self):
        try:
            return money(self.cleaned_data["amount"])
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_taxpayer_id(self):
        value = self.cleaned_data["taxpayer_id"].strip()
        if not value:
            return ""
        try:
            return validate_taxpayer_id(value)
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if data.get("save_profile") and not (data.get("profile_name") or "").strip():
            self.add_error("profile_name", _("Give the profile a name."))
        if data.get("medium") == InvoiceMedium.PAPER:
            # Where the customer typed it, as before digital invoices (the service says so too).
            for name in ("mailing_recipient", "mailing_phone", "mailing_address"):
                if not (data.get(name) or "").strip() and name not in self.errors:
                    self.add_error(name, self.fields[name].error_messages["required"])
        return data

    def application_kwargs(self) -> dict:
        """What the service takes. Only the chosen medium's delivery details are kept: an
        address typed before switching to digital (or an email before switching to paper) is
        not sent along, the way the page hides it."""
        data = {
            key: value
            for key, value in self.cleaned_data.items()
            if key not in ("save_profile", "profile_name")
        }
        if data["medium"] == InvoiceMedium.DIGITAL:
            data.update(dict.fromkeys(MAILING_FIELDS, ""))
        else:
            data["email"] = ""
        return data


class NotificationSettingsForm(PortalForm):
    """How the customer hears about their returns: SMS, email or both, in which language,
    and the email address."""

    notify_by = forms.ChoiceField(
        label=_("Tell me about my returns by"),
        choices=NotifyBy.choices,
        widget=forms.RadioSelect,
    )
    language = forms.ChoiceField(
        label=_("Language of SMS and email"),
        choices=settings.LANGUAGES,
        widget=forms.RadioSelect,
    )
    email = forms.EmailField(
        label=_("Email address"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    error_fields = {"InvalidNotificationSettings": "notify_by"}
