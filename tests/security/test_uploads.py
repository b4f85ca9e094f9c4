"""Uploaded scans are inert: crafted PDFs and images are refused or cleaned (issue 14)."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image
from pypdf import PdfWriter
from pypdf.actions import JavaScript
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from core.audit.actor import Actor
from returns.exceptions import InvalidUpload
from returns.models import RedLetterForm, ReturnRequest
from returns.services import red_letter_form_upload
from tests.returns_helpers import MINIMAL_PDF, png_bytes, submit

pytestmark = pytest.mark.django_db

FORM_NUMBER = "4403202612000001"


def _pdf(build) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    build(writer)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _action(kind: str, **entries) -> DictionaryObject:
    action = DictionaryObject({NameObject("/S"): NameObject(kind)})
    for key, value in entries.items():
        action[NameObject(f"/{key}")] = TextStringObject(value)
    return action


def open_action_js(writer):
    writer._root_object[NameObject("/OpenAction")] = _action("/JavaScript", JS="app.alert(1)")


def document_js(writer):
    writer.add_open_action(JavaScript("app.alert(1)"))


def launch(writer):
    writer._root_object[NameObject("/OpenAction")] = _action("/Launch", F="calc.exe")


def page_additional_action(writer):
    page = writer.pages[0]
    page[NameObject("/AA")] = DictionaryObject(
        {NameObject("/O"): _action("/URI", URI="https://evil.example/")}
    )


def embedded_file(writer):
    writer.add_attachment("invoice.exe", b"MZ\x90\x00")


ACTIVE_PDFS = {
    "openaction-js": _pdf(open_action_js),
    "names-javascript": _pdf(document_js),
    "launch": _pdf(launch),
    "page-aa": _pdf(page_additional_action),
    "embedded-file": _pdf(embedded_file),
}


def submit_with(special_invoice, data: bytes, name="form.pdf"):
    return submit(
        special_invoice,
        certified=True,
        red_letter_form=SimpleUploadedFile(name, data),
        red_letter_form_number=FORM_NUMBER,
    )


@pytest.mark.parametrize("data", list(ACTIVE_PDFS.values()), ids=list(ACTIVE_PDFS))
def test_a_pdf_that_acts_is_refused(special_invoice, data):
    with pytest.raises(InvalidUpload, match="scripts, actions or embedded files"):
        submit_with(special_invoice, data)
    assert not ReturnRequest.objects.exists()
    assert not RedLetterForm.objects.exists()


def test_a_name_hidden_with_hex_escapes_is_still_found(special_invoice):
    data = _pdf(open_action_js).replace(b"/JS ", b"/J#53 ").replace(b"/JS(", b"/J#53(")
    assert b"/J#53" in data
    with pytest.raises(InvalidUpload, match="scripts, actions or embedded files"):
        submit_with(special_invoice, data)


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n<html><body><script>alert(document.cookie)</script></body></html>\n%%EOF\n",
        b"%PDF-1.7\n" + b"A" * 4000 + b"\nstartxref\n0\n%%EOF\n",
        # A catalog without a single page.
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
    ],
    ids=["html-body", "garbage-body", "no-pages"],
)
def test_a_file_that_only_starts_like_a_pdf_is_refused(special_invoice, data):
    with pytest.raises(InvalidUpload, match="truncated or damaged"):
        submit_with(special_invoice, data)
    assert not RedLetterForm.objects.exists()


def test_a_plain_pdf_is_stored_as_uploaded(special_invoice):
    rr = submit_with(special_invoice, MINIMAL_PDF)
    assert rr.red_letter_forms.get().file.read() == MINIMAL_PDF


def test_bytes_appended_to_an_image_are_not_stored(special_invoice):
    payload = b"<script>alert(document.cookie)</script>"
    rr = submit_with(special_invoice, png_bytes() + payload, name="scan.png")
    form = rr.red_letter_forms.get()
    stored = form.file.read()
    assert payload not in stored
    assert form.content_type == "image/png"
    assert form.size == len(stored)
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == (8, 8)


def test_a_jpeg_is_re_encoded_without_its_metadata(special_invoice):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "<script>alert(1)</script>"  # ImageDescription
    Image.new("RGB", (16, 16), "white").save(buffer, format="JPEG", exif=exif)
    rr = submit_with(special_invoice, buffer.getvalue() + b"trailing", name="scan.jpg")
    stored = rr.red_letter_forms.get().file.read()
    assert b"<script>" not in stored
    assert not stored.endswith(b"trailing")


def test_an_image_over_the_pixel_limit_is_refused(special_invoice, settings):
    assert settings.RED_LETTER_FORM_MAX_PIXELS == 50_000_000
    buffer = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buffer, format="PNG")  # 144 Mpx, a few hundred KB
    with pytest.raises(InvalidUpload, match="too large in pixels"):
        submit_with(special_invoice, buffer.getvalue(), name="big.png")
    assert not RedLetterForm.objects.exists()


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (seed, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_return_takes_at_most_ten_forms(special_invoice, settings):
    assert settings.RED_LETTER_FORMS_PER_RETURN == 10
    rr = submit_with(special_invoice, _png(0), name="scan.png")
    user = special_invoice.customer.user
    for n in range(1, 10):
        red_letter_form_upload(
            return_request_id=rr.pk,
            actor=Actor.for_user(user),
            upload=SimpleUploadedFile("scan.png", _png(n)),
            form_number=FORM_NUMBER,
        )
    assert rr.red_letter_forms.count() == 10
    with pytest.raises(InvalidUpload, match="already has 10 uploaded forms"):
        red_letter_form_upload(
            return_request_id=rr.pk,
            actor=Actor.for_user(user),
            upload=SimpleUploadedFile("scan.png", _png(99)),
            form_number=FORM_NUMBER,
        )
    assert rr.red_letter_forms.count() == 10


def test_a_customer_uploads_a_limited_volume_a_day(special_invoice, settings):
    first = _png(1)
    settings.RED_LETTER_FORM_DAILY_BYTES = len(first) + 10
    rr = submit_with(special_invoice, first, name="scan.png")
    with pytest.raises(InvalidUpload, match="uploaded too much today"):
        red_letter_form_upload(
            return_request_id=rr.pk,
            actor=Actor.for_user(special_invoice.customer.user),
            upload=SimpleUploadedFile("scan.png", _png(2)),
            form_number=FORM_NUMBER,
        )
    assert rr.red_letter_forms.count() == 1


def test_the_owner_downloads_a_scan_as_an_attachment_in_a_sandbox(client, special_invoice):
    rr = submit_with(special_invoice, MINIMAL_PDF)
    form = rr.red_letter_forms.get()
    client.force_login(special_invoice.customer.user)
    response = client.get(reverse("billing:return_form_download", args=[rr.pk, form.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    policy = response["Content-Security-Policy"]
    assert policy.startswith("sandbox")
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_oversized_body_is_refused_before_it_is_read(client, settings):
    """Issue 14: a body announced above the limit is answered 413 at the door, in the
    visitor's language; nothing of it is read or saved."""

    class Unreadable:
        def read(self, *args):
            raise AssertionError("the body was read")

        readline = read

    from django.utils import translation

    with translation.override(None):  # the Chinese request must not leak into later tests
        response = client.generic(
            "POST",
            "/billing/invoices/1/refund/",
            data=b"",
            content_type="multipart/form-data; boundary=x",
            CONTENT_LENGTH=str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
            HTTP_ACCEPT_LANGUAGE="zh-hans",
            **{"wsgi.input": Unreadable()},
        )
    assert response.status_code == 413
    assert "上传的文件过大" in response.content.decode()
    assert not RedLetterForm.objects.exists()


def test_a_body_at_the_limit_goes_on_to_the_view(rf, settings):
    from django.http import HttpResponse

    from config.middleware import RequestBodyLimitMiddleware

    middleware = RequestBodyLimitMiddleware(lambda request: HttpResponse("view"))
    at_limit = rf.post("/", CONTENT_LENGTH=str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    over = rf.post("/", CONTENT_LENGTH=str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1))
    assert middleware(at_limit).content == b"view"
    assert middleware(over).status_code == 413
