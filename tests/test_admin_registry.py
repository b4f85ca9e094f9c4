"""Every model of the product is visible in the back office (read-only where financial)."""

import pytest
from django.apps import apps
from django.contrib import admin

from invoices.models import LedgerEntry, NumberSequence, RedLetterInvoice
from returns.models import ReturnEvent


@pytest.mark.parametrize(
    "model",
    [
        m
        for app in ("invoices", "returns", "notifications")
        for m in apps.get_app_config(app).get_models()
    ],
    ids=lambda m: m.__name__,
)
def test_every_model_is_registered_in_the_admin(model):
    assert admin.site.is_registered(model)


@pytest.mark.parametrize("model", [LedgerEntry, RedLetterInvoice, NumberSequence, ReturnEvent])
def test_financial_and_audit_rows_are_read_only_in_the_admin(model, rf, admin_user):
    model_admin = admin.site._registry[model]
    request = rf.get("/admin/")
    request.user = admin_user
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
