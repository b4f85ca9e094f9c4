"""Private files in an S3-compatible bucket (``PRIVATE_MEDIA_S3_BUCKET``), so that several web
replicas and workers share them: tested against moto's S3 server over real HTTP (botocore, the
same client the storage uses in production)."""

import json
from collections.abc import Iterator

import boto3
import pytest
import requests
from django.urls import reverse
from moto.server import ThreadedMotoServer

from invoices.models import Invoice, InvoiceType
from returns.models import RedLetterForm
from returns.storage_s3 import PrivateS3Storage
from tests.factories import CustomerFactory, issue_digital_invoice, issue_invoice
from tests.processes import free_port, run_fresh_django
from tests.returns_helpers import MINIMAL_PDF, pdf_upload, submit

BUCKET = "invoice-returns-private"
CREDENTIALS = {"access_key": "test-key", "secret_key": "test-secret", "region_name": "us-east-1"}
pytestmark = pytest.mark.django_db


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its buckets in this process across server instances: start from none.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["access_key"],
        aws_secret_access_key=CREDENTIALS["secret_key"],
        region_name=CREDENTIALS["region_name"],
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch):
    """Both private file fields store in the bucket (as STORAGES["private"] would make them)."""
    storage = PrivateS3Storage(
        bucket_name=BUCKET,
        endpoint_url=s3_endpoint,
        location="private",
        default_acl=None,
        file_overwrite=False,
        **CREDENTIALS,
    )
    for field in (RedLetterForm._meta.get_field("file"), Invoice._meta.get_field("document")):
        monkeypatch.setattr(field, "storage", storage)
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=CREDENTIALS["access_key"],
        aws_secret_access_key=CREDENTIALS["secret_key"],
        region_name=CREDENTIALS["region_name"],
    )
    return client


def object_keys(client) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_an_uploaded_form_is_stored_in_the_bucket_and_served_to_its_owner_only(client, bucket):
    customer = CustomerFactory()
    invoice = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    rr = submit(
        invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="4403262600012345",
    )
    form = RedLetterForm.objects.get(return_request=rr)
    assert object_keys(bucket) == [f"private/{form.file.name}"]
    url = reverse("billing:return_form_download", args=[rr.pk, form.pk])
    client.force_login(customer.user)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == MINIMAL_PDF
    client.force_login(CustomerFactory().user)
    assert client.get(url).status_code == 404


def test_a_digital_invoice_file_is_stored_in_the_bucket_and_downloaded(client, bucket):
    customer = CustomerFactory()
    invoice = issue_digital_invoice(customer)
    assert object_keys(bucket) == [f"private/{invoice.document.name}"]
    client.force_login(customer.user)
    response = client.get(reverse("billing:invoice_download", args=[invoice.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF-")


def test_private_objects_have_no_url(bucket):
    storage = RedLetterForm._meta.get_field("file").storage
    with pytest.raises(ValueError, match="no URL"):
        storage.url("anything.pdf")


def test_another_process_configured_by_the_environment_reads_the_same_file(s3_endpoint, bucket):
    """A second web replica: a fresh interpreter on the production settings path, configured
    only by PRIVATE_MEDIA_S3_*, finds the file this process stored."""
    customer = CustomerFactory()
    invoice = issue_digital_invoice(customer)
    script = (
        "import django, json; django.setup()\n"
        "from django.core.files.storage import storages\n"
        "from returns.storage_s3 import PrivateS3Storage\n"
        "storage = storages['private']\n"
        f"with storage.open({invoice.document.name!r}, 'rb') as f: data = f.read()\n"
        "print(json.dumps({'s3': isinstance(storage, PrivateS3Storage), 'size': len(data),"
        " 'pdf': data.startswith(b'%PDF-')}))\n"
    )
    result = run_fresh_django(
        script,
        env={
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": "sqlite:///:memory:",
            "PRIVATE_MEDIA_S3_BUCKET": BUCKET,
            "PRIVATE_MEDIA_S3_ENDPOINT_URL": s3_endpoint,
            "PRIVATE_MEDIA_S3_REGION": CREDENTIALS["region_name"],
            "PRIVATE_MEDIA_S3_ACCESS_KEY_ID": CREDENTIALS["access_key"],
            "PRIVATE_MEDIA_S3_SECRET_ACCESS_KEY": CREDENTIALS["secret_key"],
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    stored = invoice.document.size
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "s3": True,
        "size": stored,
        "pdf": True,
    }


def test_without_a_bucket_private_files_stay_on_the_local_disk():
    result = run_fresh_django(
        "import django; django.setup()\n"
        "from django.core.files.storage import storages\n"
        "print(type(storages['private']).__name__)\n",
        env={"DJANGO_DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "PrivateFileSystemStorage"
