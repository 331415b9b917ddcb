"""The archived summaries of a billing period: the latest summary of every complete invoice folder.

One core for `invoice-archiver report`, `invoice-archiver reconcile` and the reconciler function. An
invoice is complete when its folder holds summary.json (written last); folders without it are counted
apart. Revisions written by later re-checks (`<invoice>/revisions/<time>-summary.json`) belong to their
invoice's folder, and the newest of them is the invoice's latest summary.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invoice_archiver.dal import clients
from invoice_archiver.logic import layout
from invoice_archiver.logic.layout import SUMMARY_FILE
from invoice_archiver.models.period import BillingPeriod

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REVISIONS = f"{layout.REVISIONS}/"
WORKERS = 8


@dataclass
class ArchiveListing:
    """Invoice folders (`<prefix>/account=/period=/<invoice>`) and their objects (name, size)."""

    complete: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    incomplete: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def latest_summary(self, folder: str) -> str:
        """The key of the invoice's latest summary: its newest revision, else summary.json."""
        revisions = sorted(name for name, _ in self.complete[folder] if name.startswith(REVISIONS))
        return f"{folder}/{revisions[-1] if revisions else SUMMARY_FILE}"

    @property
    def complete_keys(self) -> list[str]:
        return [
            f"{folder}/{name}" for folder, objects in sorted(self.complete.items()) for name, _ in objects
        ]


def group(keys: Iterable[tuple[str, int]]) -> ArchiveListing:
    folders: dict[str, list[tuple[str, int]]] = {}
    for key, size in keys:
        folder, _, name = key.rpartition("/")
        if folder.endswith("/" + REVISIONS.rstrip("/")):
            folder, name = folder.rpartition("/")[0], REVISIONS + name
        folders.setdefault(folder, []).append((name, size))
    listing = ArchiveListing()
    for folder, objects in folders.items():
        complete = any(name == SUMMARY_FILE for name, _ in objects)
        (listing.complete if complete else listing.incomplete)[folder] = sorted(objects)
    return listing


def list_keys(bucket: str, prefixes: Iterable[str], s3: S3Client | None = None) -> list[tuple[str, int]]:
    """(key, size) of every current object under the prefixes."""
    paginator = (s3 or clients.s3()).get_paginator("list_objects_v2")
    keys = []
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys += [(obj["Key"], int(obj["Size"])) for obj in page.get("Contents", [])]
    return keys


def account_folders(bucket: str, prefix: str, s3: S3Client | None = None) -> list[str]:
    """The accounts that have a folder in the archive (`<prefix>/account=<id>/`)."""
    found = []
    paginator = (s3 or clients.s3()).get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/account=", Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            found.append(common["Prefix"].rstrip("/").rpartition("account=")[2])
    return sorted(set(found))


def read_documents(
    s3: S3Client, bucket: str, keys: list[str], *, on_read: Callable[[], None] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(key, parsed JSON) of each key, read in parallel, in the keys' order."""

    def load(key: str) -> tuple[str, dict[str, Any]]:
        document: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if on_read is not None:
            on_read()
        return key, document

    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="summaries")
    try:
        return list(pool.map(load, keys))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class PeriodSummaries:
    documents: list[tuple[str, dict[str, Any]]]  # (latest summary key, summary.json document)
    incomplete_folders: int


def period_summaries(
    s3: S3Client,
    bucket: str,
    prefix: str,
    accounts: Iterable[str],
    period: BillingPeriod,
    *,
    on_listed: Callable[[int], None] | None = None,
    on_read: Callable[[], None] | None = None,
) -> PeriodSummaries:
    """The latest summary of every complete invoice of `period` in the accounts' folders."""
    prefixes = [f"{prefix}/account={account}/period={period}/" for account in dict.fromkeys(accounts)]
    listing = group(list_keys(bucket, prefixes, s3))
    keys = [listing.latest_summary(folder) for folder in sorted(listing.complete)]
    if on_listed is not None:
        on_listed(len(keys))
    return PeriodSummaries(read_documents(s3, bucket, keys, on_read=on_read), len(listing.incomplete))
