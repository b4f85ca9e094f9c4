"""Checking uploaded red-letter form scans (R3): the content decides, never the file name.

What is stored is inert: a PDF must parse (pypdf) into a document with pages and carry no
JavaScript, automatic or launch actions, embedded files or forms that submit; an image is
decoded and re-encoded by Pillow (whatever was appended or hidden in metadata is dropped) and
may have at most ``RED_LETTER_FORM_MAX_PIXELS``. A return holds at most
``RED_LETTER_FORMS_PER_RETURN`` uploads and a customer uploads at most
``RED_LETTER_FORM_DAILY_BYTES`` in 24 hours.
"""

import datetime as dt
import hashlib
import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from returns.exceptions import InvalidUpload

if TYPE_CHECKING:
    from returns.models import ReturnRequest

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024

# PDF names that make a document act (run script, open or launch something, submit data) or
# smuggle files: a scan of a paper form needs none of them.
_ACTIVE_PDF_NAMES = frozenset(
    {
        "/JS",
        "/JavaScript",
        "/OpenAction",
        "/AA",
        "/Launch",
        "/EmbeddedFile",
        "/EmbeddedFiles",
        "/RichMedia",
        "/XFA",
        "/SubmitForm",
        "/ImportData",
        "/GoToR",
        "/GoToE",
    }
)
# A scan has a few hundred objects: a document with far more is refused rather than walked.
_MAX_PDF_OBJECTS = 100_000


@dataclass(frozen=True)
class SniffedFile:
    content_type: str
    size: int
    sha256: str
    # What to store: the PDF as uploaded (checked), or the re-encoded image.
    file: "ContentFile[bytes]"


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


def _active_pdf_content() -> InvalidUpload:
    return InvalidUpload(
        _(
            "This PDF contains scripts, actions or embedded files; a scan cannot. Print it to "
            "PDF or scan the paper form again."
        )
    )


def _check_pdf(data: bytes) -> None:
    """A structurally sound PDF with pages and nothing active in any of its objects."""
    # Imported here, not at the top: pypdf takes half a second to import, which every process
    # that loads the services (check_ledger, workers, web) would pay without ever seeing a PDF.
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    if b"%%EOF" not in data[-2048:]:
        raise InvalidUpload(_("The PDF file is truncated or damaged: upload it again."))
    damaged = InvalidUpload(_("The PDF file is truncated or damaged: upload it again."))
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        root = reader.trailer["/Root"].get_object()
        if not isinstance(root, DictionaryObject) or root.get("/Type") != "/Catalog":
            raise damaged
        if len(reader.pages) < 1:
            raise damaged
        # Every object of the file, reachable or not, from the trailer and the xref table.
        pending: list[Any] = [reader.trailer]
        for generation, numbers in reader.xref.items():
            pending.extend(IndirectObject(n, generation, reader) for n in numbers)
        for number in reader.xref_objStm:
            pending.append(IndirectObject(number, 0, reader))
        seen: set[tuple[int, int]] = set()
        visited = 0
        while pending:
            item = pending.pop()
            if isinstance(item, IndirectObject):
                key = (item.idnum, item.generation)
                if key in seen:
                    continue
                seen.add(key)
                item = item.get_object()
            visited += 1
            if visited > _MAX_PDF_OBJECTS:
                raise damaged
            if isinstance(item, DictionaryObject):
                for name, value in item.items():
                    if name in _ACTIVE_PDF_NAMES:
                        raise _active_pdf_content()
                    pending.append(value)
            elif isinstance(item, ArrayObject):
                pending.extend(item)
            elif isinstance(item, NameObject) and item in _ACTIVE_PDF_NAMES:
                raise _active_pdf_content()
    except InvalidUpload:
        raise
    except (PyPdfError, KeyError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise damaged from exc


def _reencode_image(data: bytes) -> tuple[str, bytes]:
    """Decode the image and encode its pixels again: nothing else of the upload survives."""
    from PIL import Image, ImageOps, UnidentifiedImageError  # on first use, as pypdf above

    not_an_image = InvalidUpload(
        _("This file is not a PDF, JPEG or PNG (its content was checked, not its name).")
    )
    too_many_pixels = InvalidUpload(
        _("This image is too large in pixels: scan at a lower resolution.")
    )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format
            if image_format not in ("JPEG", "PNG"):
                raise InvalidUpload(
                    _("%(format)s images are not accepted: upload a PDF, JPEG or PNG.")
                    % {"format": image_format}
                )
            width, height = image.size
            if width * height > settings.RED_LETTER_FORM_MAX_PIXELS:
                raise too_many_pixels  # refused before decoding a single pixel
            image.load()  # a damaged or truncated image fails here
            clean = ImageOps.exif_transpose(image)
            if image_format == "JPEG" and clean.mode not in ("L", "RGB", "CMYK"):
                clean = clean.convert("RGB")
            out = io.BytesIO()
            if image_format == "JPEG":
                clean.save(out, format="JPEG", quality=92)
            else:
                clean.save(out, format="PNG", optimize=False)
    except InvalidUpload:
        raise
    except Image.DecompressionBombError as exc:
        # A few kilobytes that declare a gigapixel image: refuse before decoding it.
        raise too_many_pixels from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise not_an_image from exc
    return ("image/jpeg" if image_format == "JPEG" else "image/png"), out.getvalue()


def _inert_content(data: bytes) -> tuple[str, bytes]:
    if data.startswith(b"%PDF-"):
        _check_pdf(data)
        return "application/pdf", data
    return _reencode_image(data)


def _check_quota(return_request: "ReturnRequest", size: int) -> None:
    from returns.models import RedLetterForm

    forms = RedLetterForm.objects.filter(return_request=return_request)
    if forms.count() >= settings.RED_LETTER_FORMS_PER_RETURN:
        raise InvalidUpload(
            _("This return already has %(count)d uploaded forms: no more can be added.")
            % {"count": settings.RED_LETTER_FORMS_PER_RETURN}
        )
    since = timezone.now() - dt.timedelta(days=1)
    today = (
        RedLetterForm.objects.filter(
            return_request__invoice__customer_id=return_request.invoice.customer_id,
            created_at__gte=since,
        ).aggregate(total=Sum("size"))["total"]
        or 0
    )
    if today + size > settings.RED_LETTER_FORM_DAILY_BYTES:
        logger.warning(
            "red-letter form upload refused: customer %s over the daily volume",
            return_request.invoice.customer_id,
        )
        raise InvalidUpload(
            _("You have uploaded too much today (at most %(size)d MB a day): try again tomorrow.")
            % {"size": settings.RED_LETTER_FORM_DAILY_BYTES // (1024 * 1024)}
        )


def sniff_red_letter_form(
    upload: UploadedFile, *, return_request: "ReturnRequest | None" = None
) -> SniffedFile:
    """Validate an uploaded scan: not empty, at most 10 MB, really a PDF, JPEG or PNG, inert,
    and within the return's and the customer's upload quota (when ``return_request`` is given).
    Store ``SniffedFile.file``, never the upload itself."""
    limit = settings.RED_LETTER_FORM_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise InvalidUpload(_too_large(limit))
    data = _read_limited(upload, limit)
    if not data:
        raise InvalidUpload(_("The file is empty."))
    if return_request is not None:
        _check_quota(return_request, len(data))
    content_type, stored = _inert_content(data)
    return SniffedFile(
        content_type=content_type,
        size=len(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        file=ContentFile(stored, name="scan"),
    )
