"""Checking uploaded red-letter form scans (R3): the content decides, never the file name."""

import hashlib
import io
from dataclasses import dataclass

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from returns.exceptions import InvalidUpload

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class SniffedFile:
    content_type: str
    size: int
    sha256: str


def _too_large(limit: int) -> str:
    return _(
        "The file is larger than %(size)d MB. Scan at a lower resolution or as a PDF and "
        "upload it again."
    ) % {"size": limit // (1024 * 1024)}


def _read_limited(upload: UploadedFile, limit: int) -> bytes:
    upload.seek(0)
    data = bytearray()
    for chunk in upload.chunks(_CHUNK):
        data.extend(chunk)
        if len(data) > limit:
            raise InvalidUpload(_too_large(limit))
    upload.seek(0)
    return bytes(data)


def _sniff_content_type(data: bytes) -> str:
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-2048:]:
            raise InvalidUpload(_("The PDF file is truncated or damaged: upload it again."))
        return "application/pdf"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format
            image.verify()  # a damaged or truncated image fails here
    except Image.DecompressionBombError as exc:
        # A few kilobytes that declare a gigapixel image: refuse before decoding it.
        raise InvalidUpload(
            _("This image is too large in pixels: scan at a lower resolution.")
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidUpload(
            _("This file is not a PDF, JPEG or PNG (its content was checked, not its name).")
        ) from exc
    if image_format == "JPEG":
        return "image/jpeg"
    if image_format == "PNG":
        return "image/png"
    raise InvalidUpload(
        _("%(format)s images are not accepted: upload a PDF, JPEG or PNG.")
        % {"format": image_format}
    )


def sniff_red_letter_form(upload: UploadedFile) -> SniffedFile:
    """Validate an uploaded scan: not empty, at most 10 MB, really a PDF, JPEG or PNG."""
    limit = settings.RED_LETTER_FORM_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise InvalidUpload(_too_large(limit))
    data = _read_limited(upload, limit)
    if not data:
        raise InvalidUpload(_("The file is empty."))
    return SniffedFile(
        content_type=_sniff_content_type(data),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
