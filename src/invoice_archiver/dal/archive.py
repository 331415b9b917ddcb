"""The S3 archive: create-only writes (IfNoneMatch: *), single PUT or multipart, with SHA-256 checksums.

S3 answers a conditional write with 412 PreconditionFailed when the key exists (`AlreadyExists`: the
caller compares what is there), and with 409 ConditionalRequestConflict when another conditional write to
the same key is in flight: that is a race, not an answer, so the write is tried again a few times, and
then fails as `WriteConflict`, which the fetcher retries later like any transient error.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import random
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from invoice_archiver.dal.sdk import Needs

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

PART_SIZE = 16 * 1024 * 1024

# What this module sends and reads (checked at cold start by invoice_archiver.dal.sdk).
WRITING = (
    Needs(
        "s3",
        "PutObject",
        request=("IfNoneMatch", "ChecksumSHA256", "Metadata", "Tagging", "ContentType", "ContentLength"),
    ),
    Needs(
        "s3",
        "CreateMultipartUpload",
        request=("ChecksumAlgorithm", "Metadata", "Tagging"),
        response=("UploadId",),
    ),
    Needs("s3", "UploadPart", request=("ChecksumSHA256", "PartNumber", "UploadId"), response=("ETag",)),
    Needs(
        "s3",
        "CompleteMultipartUpload",
        request=("IfNoneMatch", "MultipartUpload.Parts.ChecksumSHA256", "MultipartUpload.Parts.ETag"),
    ),
    Needs("s3", "AbortMultipartUpload", request=("UploadId",)),
    Needs(
        "s3",
        "HeadObject",
        request=("ChecksumMode",),
        response=("ChecksumSHA256", "Metadata", "ContentLength"),
    ),
    Needs("s3", "GetObject", response=("Body",)),
)


# A 409 ConditionalRequestConflict is tried again this many times in all, with a short backoff.
CONFLICT_ATTEMPTS = 4
CONFLICT_BACKOFF_SECONDS = 0.25
Sleep = Callable[[float], None]


class AlreadyExists(Exception):
    """The key is taken: S3 refused to overwrite it (412 PreconditionFailed)."""


class WriteConflict(Exception):
    """S3 kept answering 409 ConditionalRequestConflict: another write to the key is in flight. Retryable."""


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def _answer(exc: ClientError) -> tuple[str, object]:
    return (
        str(exc.response.get("Error", {}).get("Code", "")),
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
    )


def _precondition_failed(exc: ClientError) -> bool:
    code, status = _answer(exc)
    return code == "PreconditionFailed" or status == 412


def _conflict(exc: ClientError) -> bool:
    code, status = _answer(exc)
    return code == "ConditionalRequestConflict" or status == 409


def _conditional(write: Callable[[], object], key: str, sleep: Sleep) -> None:
    """One create-only write: 412 -> AlreadyExists; 409 -> tried again, then WriteConflict."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            write()
        except ClientError as exc:
            if _precondition_failed(exc):
                raise AlreadyExists(key) from None
            if not _conflict(exc):
                raise
        else:
            return
        if attempt + 1 < CONFLICT_ATTEMPTS:
            sleep(CONFLICT_BACKOFF_SECONDS * 2**attempt * random.uniform(0.5, 1.0))
    raise WriteConflict(
        f"{key}: S3 answered 409 ConditionalRequestConflict {CONFLICT_ATTEMPTS} times (another write to the "
        "key is in flight); the invoice is retried later"
    )


def put_new(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    body: IO[bytes],
    size: int,
    sha256: str,
    content_type: str,
    metadata: dict[str, str],
    tagging: str,
    multipart_threshold: int,
    sleep: Sleep = time.sleep,
) -> None:
    """Create the object with its tags and metadata in the creating request; never overwrite."""
    if size > multipart_threshold:
        _put_multipart(client, bucket, key, body, content_type, metadata, tagging, sleep)
        return
    _put_once(
        client,
        bucket=bucket,
        key=key,
        body=body.read(),
        content_type=content_type,
        checksum=_b64(sha256),
        metadata=metadata,
        tagging=tagging,
        sleep=sleep,
    )


def _put_once(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    body: bytes,
    content_type: str,
    checksum: str,
    metadata: dict[str, str],
    tagging: str,
    sleep: Sleep = time.sleep,
) -> None:
    """One create-only PutObject; a taken key becomes AlreadyExists."""
    _conditional(
        lambda: client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentLength=len(body),
            ContentType=content_type,
            ChecksumSHA256=checksum,
            Metadata=metadata,
            Tagging=tagging,
            IfNoneMatch="*",
        ),
        key,
        sleep,
    )


def _put_multipart(
    client: S3Client,
    bucket: str,
    key: str,
    body: IO[bytes],
    content_type: str,
    metadata: dict[str, str],
    tagging: str,
    sleep: Sleep,
) -> None:
    upload_id = client.create_multipart_upload(
        Bucket=bucket,
        Key=key,
        ContentType=content_type,
        ChecksumAlgorithm="SHA256",
        Metadata=metadata,
        Tagging=tagging,
    )["UploadId"]
    try:
        parts: list[CompletedPartTypeDef] = []
        number = 1
        while chunk := body.read(PART_SIZE):
            checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode("ascii")
            etag = client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
                ChecksumSHA256=checksum,
            )["ETag"]
            parts.append({"PartNumber": number, "ETag": etag, "ChecksumSHA256": checksum})
            number += 1
        # The parts stay uploaded while the completion is tried again after a 409.
        _conditional(
            lambda: client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            ),
            key,
            sleep,
        )
    except BaseException:
        # If the abort fails too, the bucket's lifecycle rule removes the incomplete upload.
        with contextlib.suppress(ClientError):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def head(client: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        response = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise
    return dict(response)


def put_json_new(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    document: dict[str, Any],
    metadata: dict[str, str],
    tagging: str,
    sleep: Sleep = time.sleep,
) -> None:
    body = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
    _put_once(
        client,
        bucket=bucket,
        key=key,
        body=body,
        content_type="application/json",
        checksum=base64.b64encode(hashlib.sha256(body).digest()).decode("ascii"),
        metadata=metadata,
        tagging=tagging,
        sleep=sleep,
    )


def get_json(client: S3Client, bucket: str, key: str) -> dict[str, Any]:
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    loaded: dict[str, Any] = json.loads(body)
    return loaded
