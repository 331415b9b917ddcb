"""Read-only access to the archive bucket for verify and report: every version of every key, and a
streaming SHA-256 of an object (with the composite checksum S3 keeps for multipart uploads).

The verify client does not validate checksums itself (`response_checksum_validation=when_required`):
verify compares them and reports each difference with its key, instead of failing mid-read.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from invoice_archiver.dal import clients
from invoice_archiver.dal.archive import PART_SIZE

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Version:
    version_id: str
    etag: str
    size: int
    latest: bool


@dataclass
class KeyHistory:
    versions: list[Version] = field(default_factory=list)
    deleted_by: str | None = None  # the version id of a delete marker that is the latest version

    @property
    def contents(self) -> set[tuple[str, int]]:
        """Distinct (ETag, size) among the versions: more than one means the key was overwritten."""
        return {(v.etag, v.size) for v in self.versions}

    @property
    def current(self) -> Version | None:
        if self.deleted_by is not None:
            return None
        return next((v for v in self.versions if v.latest), None)


@dataclass(frozen=True)
class Digest:
    sha256: str  # hex, of the whole object
    size: int
    full_b64: str  # base64 SHA-256, as S3 stores a single-part upload's checksum
    composite_b64: str  # base64 SHA-256 of the parts' SHA-256s (PART_SIZE parts), as for a multipart upload
    parts: int


class Interrupted(Exception):
    """The stop event was set while an object was being read."""


@cache
def reader(pool: int) -> S3Client:
    config = Config(
        retries={"mode": "standard"},
        max_pool_connections=max(pool, 10),
        response_checksum_validation="when_required",
    )
    client: S3Client = clients.session().client("s3", config=config)
    return client


def histories(s3: S3Client, bucket: str, prefix: str) -> dict[str, KeyHistory]:
    """Every key under `prefix` with its versions (versioning is on in the stack and in run-local)."""
    found: dict[str, KeyHistory] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            found.setdefault(version["Key"], KeyHistory()).versions.append(
                Version(
                    str(version.get("VersionId", "null")),
                    str(version.get("ETag", "")),
                    int(version.get("Size", 0)),
                    bool(version.get("IsLatest")),
                )
            )
        for marker in page.get("DeleteMarkers", []):
            if marker.get("IsLatest"):
                found.setdefault(marker["Key"], KeyHistory()).deleted_by = str(marker.get("VersionId"))
    return found


def stored_checksum(
    s3: S3Client, bucket: str, key: str, version_id: str
) -> tuple[str | None, dict[str, str]]:
    """S3's stored SHA-256 checksum (without a '-<parts>' suffix) and the object's user metadata."""
    head: dict[str, Any] = dict(
        s3.head_object(Bucket=bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED")
    )
    checksum = head.get("ChecksumSHA256")
    return (str(checksum).split("-", 1)[0] if checksum else None), dict(head.get("Metadata", {}))


class _Hasher:
    """SHA-256 of the whole object and of each PART_SIZE part, fed chunk by chunk."""

    def __init__(self) -> None:
        self.whole = hashlib.sha256()
        self.part = hashlib.sha256()
        self.part_fill = 0
        self.part_digests: list[bytes] = []
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.whole.update(chunk)
        self.size += len(chunk)
        view = memoryview(chunk)
        while view:
            take = min(len(view), PART_SIZE - self.part_fill)
            self.part.update(view[:take])
            self.part_fill += take
            view = view[take:]
            if self.part_fill == PART_SIZE:
                self.part_digests.append(self.part.digest())
                self.part, self.part_fill = hashlib.sha256(), 0

    def result(self) -> Digest:
        parts = list(self.part_digests)
        if self.part_fill or not parts:
            parts.append(self.part.digest())
        composite = hashlib.sha256(b"".join(parts)).digest()
        return Digest(
            sha256=self.whole.hexdigest(),
            size=self.size,
            full_b64=base64.b64encode(self.whole.digest()).decode("ascii"),
            composite_b64=base64.b64encode(composite).decode("ascii"),
            parts=len(parts),
        )


def digest(s3: S3Client, bucket: str, key: str, version_id: str, stop: threading.Event) -> Digest:
    """Stream one object version, hashing it whole and in PART_SIZE parts; memory stays at one chunk."""
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"]
    hasher = _Hasher()
    try:
        while chunk := body.read(CHUNK):
            if stop.is_set():
                raise Interrupted(key)
            hasher.update(chunk)
    finally:
        body.close()
    return hasher.result()


def digest_bytes(data: bytes) -> Digest:
    hasher = _Hasher()
    hasher.update(data)
    return hasher.result()


def read_small(s3: S3Client, bucket: str, key: str, version_id: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read()
    return data
