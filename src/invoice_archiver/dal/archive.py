"""The S3 archive: create-only writes (IfNoneMatch: *), single PUT or multipart, with SHA-256 checksums."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
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


class AlreadyExists(Exception):
    """The key is taken: S3 refused to overwrite it."""


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def _precondition_failed(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in {"PreconditionFailed", "ConditionalRequestConflict"} or status in {409, 412}


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
) -> None:
    """Create the object with its tags and metadata in the creating request; never overwrite."""
    if size > multipart_threshold:
        _put_multipart(client, bucket, key, body, content_type, metadata, tagging)
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
) -> None:
    """One create-only PutObject; a taken key becomes AlreadyExists."""
    try:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentLength=len(body),
            ContentType=content_type,
            ChecksumSHA256=checksum,
            Metadata=metadata,
            Tagging=tagging,
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if _precondition_failed(exc):
            raise AlreadyExists(key) from None
        raise


def _put_multipart(
    client: S3Client,
    bucket: str,
    key: str,
    body: IO[bytes],
    content_type: str,
    metadata: dict[str, str],
    tagging: str,
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
        client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            IfNoneMatch="*",
        )
    except BaseException as exc:
        # If the abort fails too, the bucket's lifecycle rule removes the incomplete upload.
        with contextlib.suppress(ClientError):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        if isinstance(exc, ClientError) and _precondition_failed(exc):
            raise AlreadyExists(key) from None
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
    )


def get_json(client: S3Client, bucket: str, key: str) -> dict[str, Any]:
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    loaded: dict[str, Any] = json.loads(body)
    return loaded
