"""Reconciliation results in the archive bucket: `reconciliation/YYYY-MM/<UTC time>-result.json`.

Create-only, like every object of the archive (PutObject with If-None-Match: *, and a bucket policy that
denies any creating write under the prefix without it): a rerun writes a new object beside the first,
never over it. The newest result of a period is the last key of its folder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from invoice_archiver.dal.archive import AlreadyExists, put_json_new
from invoice_archiver.dal.sdk import Needs
from invoice_archiver.logic.layout import tag_value, tagging_header
from invoice_archiver.models.period import BillingPeriod

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "reconciliation"
ATTEMPTS = 5

WRITING = Needs(
    "s3", "PutObject", request=("IfNoneMatch", "ChecksumSHA256", "Metadata", "Tagging", "ContentType")
)


def result_key(period: BillingPeriod, moment: datetime, attempt: int = 0) -> str:
    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    suffix = f"-{attempt + 1}" if attempt else ""
    return f"{PREFIX}/{period}/{stamp}{suffix}-result.json"


def put_result(
    s3: S3Client, bucket: str, period: BillingPeriod, document: dict[str, Any], moment: datetime
) -> str:
    """Store one result as a new object; the key is taken from `moment` (a taken key: the next suffix)."""
    metadata = {
        "billing-period": str(period),
        "problems": str(document.get("problems", "")),
        "missing-from-archive": str(document.get("missing_from_archive", "")),
    }
    tags = tagging_header(
        {"archiver": "invoice-archiver", "record": "reconciliation", "billing-period": tag_value(period)}
    )
    for attempt in range(ATTEMPTS):
        key = result_key(period, moment, attempt)
        try:
            put_json_new(s3, bucket=bucket, key=key, document=document, metadata=metadata, tagging=tags)
        except AlreadyExists:
            continue
        return key
    raise AlreadyExists(result_key(period, moment, ATTEMPTS - 1))
