"""Private file storage for uploaded red-letter forms and issued digital invoices (R12): the
local disk (the embedded default), or an S3-compatible bucket shared by every web replica and
worker (``PRIVATE_MEDIA_S3_BUCKET``)."""

from typing import Any

from django.core.files.storage import FileSystemStorage


class PrivateFileSystemStorage(FileSystemStorage):
    """Files outside any URL space: there is no public URL for them, by construction.

    Django would otherwise derive a URL from MEDIA_URL (which defaults to "/"); here asking for
    one is a programming error, and the authorised download view streams the file instead.
    """

    def url(self, name: str | None) -> str:
        raise ValueError(
            "Private files have no URL: they are served only through an authorised view."
        )


def __getattr__(name: str) -> Any:
    """``returns.storage.PrivateS3Storage`` (the name settings and callers use), imported on
    first use from ``returns.storage_s3``: see there why."""
    if name == "PrivateS3Storage":
        from returns.storage_s3 import PrivateS3Storage

        return PrivateS3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
