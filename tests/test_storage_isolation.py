"""The suite never writes uploaded or issued files into the checkout: every file field of every
model stores under the per-test folder (``conftest._private_media``)."""

from django.apps import apps
from django.db import models


def test_every_file_field_stores_under_the_tests_own_folder(tmp_path):
    fields = [
        field
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, models.FileField)
    ]
    assert {f"{f.model.__name__}.{f.name}" for f in fields} == {
        "RedLetterForm.file",
        "Invoice.document",
    }
    for field in fields:
        assert str(field.storage.location).startswith(str(tmp_path)), field
