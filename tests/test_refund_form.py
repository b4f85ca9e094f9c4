"""The Refund form's fields are copied per form more cheaply than Django copies them (issue 16,
P1): each form still has fields and widgets of its own, so nothing one form (one request)
changes reaches another."""

import pytest
from django import forms
from django.forms import BoundField

from invoices.models import ReversalReason
from returns.forms import PortalField, RefundForm
from returns.models import ReturnProblem

pytestmark = pytest.mark.django_db


def test_p1_each_refund_form_has_fields_and_widgets_of_its_own(invoice, special_invoice):
    assert all(isinstance(field, PortalField) for field in RefundForm.base_fields.values())
    for asked in (invoice, special_invoice):
        first, second = RefundForm(invoice=asked), RefundForm(invoice=asked)

        for name, field in first.fields.items():
            other, declared = second.fields[name], RefundForm.base_fields[name]
            assert isinstance(declared, PortalField), name
            assert type(field) is type(declared), name
            assert len({id(field), id(other), id(declared)}) == 3, name
            assert len({id(field.widget), id(other.widget), id(declared.widget)}) == 3, name
            assert type(field.widget) is type(declared.widget), name
            assert field.widget.attrs == declared.widget.attrs, name
            assert field.widget.attrs is not declared.widget.attrs, name
            assert field.error_messages is not declared.error_messages, name
            assert field.validators is not declared.validators, name
            assert field.validators == declared.validators, name
            assert (field.label, field.help_text) == (declared.label, declared.help_text), name


def test_p1_what_one_refund_form_changes_in_its_fields_no_other_form_sees(invoice):
    changed = RefundForm(invoice=invoice)
    field = changed.fields["reason_code"]
    field.required = False
    field.widget.attrs["autofocus"] = True
    field.error_messages["required"] = "changed"
    field.validators.append(lambda value: None)
    field.choices = [("void", "Void")]
    reason = changed.fields["reason"]
    reason.max_length = 10
    reason.widget.attrs["rows"] = 9
    reason.validators.clear()

    fresh = RefundForm(invoice=invoice).fields["reason_code"]
    assert fresh.required is True
    assert "autofocus" not in fresh.widget.attrs
    assert fresh.error_messages["required"] == "Choose the reason code for the tax system."
    assert fresh.validators == []
    assert fresh.choices == list(ReversalReason.choices)
    assert fresh.widget.choices == list(ReversalReason.choices)
    assert RefundForm.base_fields["reason_code"].choices == list(ReversalReason.choices)
    fresh_reason = RefundForm(invoice=invoice).fields["reason"]
    assert fresh_reason.max_length == 500
    assert fresh_reason.widget.attrs["rows"] == 3
    assert len(fresh_reason.validators) == 2  # max length, no null characters


def test_p1_a_special_invoice_requiring_the_certified_answer_leaves_other_forms_alone(
    invoice, special_invoice
):
    special = RefundForm({}, invoice=special_invoice)
    assert not special.is_valid()
    assert special.errors["certified"] == ["Please answer: has this invoice been certified?"]

    declared = RefundForm.base_fields["certified"]
    assert declared.required is False
    assert "Please answer" not in str(declared.error_messages["required"])
    assert "certified" not in RefundForm(invoice=invoice).fields


def test_p1_the_refund_forms_fields_render_and_validate_as_djangos_own(invoice):
    form = RefundForm(
        {"problem": "title", "reason_code": "no-such-code", "reason": "x" * 501}, invoice=invoice
    )
    djangos = {
        "problem": forms.ChoiceField(choices=ReturnProblem.choices, widget=forms.RadioSelect),
        "reason_code": forms.ChoiceField(choices=ReversalReason.choices),
        "reason": forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3})),
    }

    assert not form.is_valid()
    assert form.errors["reason_code"] == ["Choose the reason code for the tax system."]
    assert form.errors["reason"] == ["The reason is 501 characters long; at most 500 are allowed."]
    assert form.cleaned_data["problem"] == "title"
    for name, field in djangos.items():
        assert str(form[name]) == str(BoundField(form, field, name))
