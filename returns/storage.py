"""Private file storage for uploaded red-letter forms and issued digital invoices (R12): the
local disk (the embedded default), or an S3-compatible bucket shared by every web replica and
worker (``PRIVATE_MEDIA_S3_BUCKET``, ``returns.storage_s3``)."""

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
