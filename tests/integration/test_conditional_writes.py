"""Create-only writes against moto's S3 over HTTP: 412 means the key is taken, 409 means a race.

S3 answers a conditional write with 409 ConditionalRequestConflict while another conditional write to the
same key is in flight. That is no answer about the key: the write is tried again, never taken for "it
exists" (which would turn a race into a false ArchiveConflict). The 409s are injected deterministically
in front of moto, for the first N attempts of the operation.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from invoice_archiver.dal import archive, clients
from invoice_archiver.local import resources
from invoice_archiver.sandbox.runner import Sandbox

BUCKET = "conditional-writes"
CONFLICT = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ConditionalRequestConflict</Code>'
    b"<Message>A conflicting conditional operation is currently in progress against this resource."
    b"</Message></Error>"
)


class Conflicts:
    """Answers the first `count` sends of `operation` with a 409, before they reach moto."""

    def __init__(self, operation: str, count: int) -> None:
        self.operation, self.left, self.sent = operation, count, 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent += 1
        if self.left <= 0:
            return None
        self.left -= 1
        return AWSResponse(request.url, 409, {"Content-Type": "application/xml"}, _Raw(CONFLICT))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body.read()


@pytest.fixture
def s3(make_sandbox: Callable[..., Sandbox]) -> Any:
    make_sandbox()
    clients.reset()
    resources.ensure_bucket(BUCKET)
    return clients.s3()


def conflicts(s3: Any, operation: str, count: int) -> Conflicts:
    hook = Conflicts(operation, count)
    s3.meta.events.register(f"before-send.s3.{operation}", hook)
    return hook


def put(s3: Any, key: str, data: bytes, *, threshold: int = 16 * 1024 * 1024) -> None:
    archive.put_new(
        s3,
        bucket=BUCKET,
        key=key,
        body=io.BytesIO(data),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="application/pdf",
        metadata={"sha256": hashlib.sha256(data).hexdigest()},
        tagging="archiver=invoice-archiver",
        multipart_threshold=threshold,
        sleep=lambda _: None,
    )


def test_a_409_is_tried_again_and_the_object_is_created_once(s3: Any) -> None:
    # Given S3 answering the first two PutObject attempts with 409 ConditionalRequestConflict
    hook = conflicts(s3, "PutObject", 2)

    # When a document is created
    put(s3, "invoices/a/invoice.pdf", b"%PDF-1.7 first")

    # Then the write was tried again and the object exists, once, with its bytes
    assert hook.sent == 3
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="invoices/a/")
    assert len(versions.get("Versions", [])) == 1
    assert s3.get_object(Bucket=BUCKET, Key="invoices/a/invoice.pdf")["Body"].read() == b"%PDF-1.7 first"


def test_a_409_that_persists_is_a_retryable_conflict_not_an_existing_object(s3: Any) -> None:
    # Given S3 answering every attempt with 409
    conflicts(s3, "PutObject", archive.CONFLICT_ATTEMPTS)

    # When a document is created, Then it fails as a write conflict (retried later), not AlreadyExists
    with pytest.raises(archive.WriteConflict, match="409 ConditionalRequestConflict"):
        put(s3, "invoices/b/invoice.pdf", b"%PDF-1.7 second")
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="invoices/b/")


def test_a_taken_key_is_412_already_exists(s3: Any) -> None:
    # Given an object already created
    put(s3, "invoices/c/invoice.pdf", b"%PDF-1.7 third")

    # When the same key is created again, Then S3's 412 says it exists (and nothing is overwritten)
    with pytest.raises(archive.AlreadyExists):
        put(s3, "invoices/c/invoice.pdf", b"%PDF-1.7 different")
    assert s3.get_object(Bucket=BUCKET, Key="invoices/c/invoice.pdf")["Body"].read() == b"%PDF-1.7 third"


def test_a_409_on_completing_a_multipart_upload_completes_it_on_the_next_try(s3: Any) -> None:
    # Given a document above the multipart threshold, and S3 answering the first completion with 409
    data = bytes(range(256)) * (6 * 1024 * 4 + 7)  # ~6 MiB: above the 5 MiB minimum threshold
    hook = conflicts(s3, "CompleteMultipartUpload", 1)

    # When it is created with a 5 MiB multipart threshold
    put(s3, "invoices/d/invoice.pdf", data, threshold=5 * 1024 * 1024)

    # Then the parts were kept and the completion tried again: the object holds every byte
    assert hook.sent == 2
    assert s3.get_object(Bucket=BUCKET, Key="invoices/d/invoice.pdf")["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
