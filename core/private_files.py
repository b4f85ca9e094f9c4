"""Serving a private file (a customer's scan, a digital invoice's PDF or OFD): never a public
URL (``private_storage`` has none), only a view that checked who asks (R12)."""

from django.core.files import File
from django.http import FileResponse

# A download, never rendered from this origin: and if a browser displayed it anyway, a sandbox
# keeps any script in it away from the site.
DOWNLOAD_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


def private_file_download(file: File, *, filename: str, content_type: str) -> FileResponse:
    """``file`` as an attachment named ``filename``: not sniffed, sandboxed, never cached by a
    shared cache."""
    response = FileResponse(
        file.open("rb"), as_attachment=True, content_type=content_type, filename=filename
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cache-Control"] = "private, no-store"
    return response
