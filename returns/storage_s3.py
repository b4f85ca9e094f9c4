"""The private files in an S3-compatible bucket. A module of its own so that boto3 and botocore
(about a second to import) load only in processes configured for a bucket
(``PRIVATE_MEDIA_S3_BUCKET``), not in every process that imports ``returns.storage``."""

from storages.backends.s3 import S3Storage


class PrivateS3Storage(S3Storage):
    """The same private files in an S3-compatible bucket (AWS S3, Alibaba Cloud OSS, Tencent
    COS, MinIO): objects are private (no ACL grants anyone else), never overwritten, and,
    as on disk, have no URL: the authorised views stream them."""

    def url(self, name: str | None, parameters=None, expire=None, http_method=None) -> str:
        raise ValueError(
            "Private files have no URL: they are served only through an authorised view."
        )
