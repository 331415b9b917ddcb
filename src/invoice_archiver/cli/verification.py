"""verify's checks: every archived object read back and compared with the ledger, the invoice's summaries,
S3's own checksum and the object's `sha256` metadata; plus what should not be there.

An ARCHIVED invoice's folder holds its documents, summary.json (the first archive) and, after re-checks,
`revisions/<time>-summary.json`; the latest summary (the ledger's `latest_summary_key`) lists every
archived document, summary.json the ones of the first archive.

Problem kinds (each with its key):
  missing      a key the ledger lists is not in the bucket, or a delete marker hides it
  differs      the bytes' SHA-256 or size differ from the ledger, a summary, S3's checksum or metadata
  overwritten  the key has versions with different content: it was replaced after it was archived
  no-summary   an invoice folder without summary.json (incomplete), or an ARCHIVED invoice without one
  orphan       an object that belongs to no invoice of the ledger, or outside the key layout
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from invoice_archiver.cli import inventory
from invoice_archiver.dal.ledger.records import InvoiceRecord
from invoice_archiver.dal.ledger.states import Status
from invoice_archiver.logic import layout
from invoice_archiver.logic.archived_documents import archived_documents
from invoice_archiver.logic.layout import SUMMARY_FILE, invoice_prefix
from invoice_archiver.models.period import BillingPeriod

REVISIONS = f"{layout.REVISIONS}/"


@dataclass(frozen=True)
class Problem:
    kind: str
    key: str
    detail: str
    account_id: str = ""
    invoice_id: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Findings:
    invoices: int = 0
    objects: int = 0
    bytes: int = 0
    s3_checksums: int = 0
    problems: list[Problem] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, problem: Problem) -> None:
        with self._lock:
            self.problems.append(problem)

    def read(self, size: int, s3_checksum: bool) -> None:
        with self._lock:
            self.objects += 1
            self.bytes += size
            self.s3_checksums += int(s3_checksum)


@dataclass(frozen=True)
class Scope:
    bucket: str
    prefix: str
    found: dict[str, inventory.KeyHistory]
    workers: int

    def folder(self, item: InvoiceRecord) -> str:
        period = BillingPeriod.parse(item.billing_period)
        return invoice_prefix(self.prefix, item.account_id, period, item.invoice_id)

    def revisions(self, item: InvoiceRecord) -> list[str]:
        start = self.folder(item) + REVISIONS
        return sorted(k for k, h in self.found.items() if k.startswith(start) and h.current is not None)


def with_documents(scope: Scope, item: InvoiceRecord) -> InvoiceRecord:
    """The record with its document lists: an invoice with many documents has none in the ledger (only
    `documents_omitted`, dal/ledger/item_size.py), and they are read from its latest summary (unless it
    cannot be read: check_invoice reports that)."""
    if not item.documents_omitted:
        return item

    def read(key: str) -> dict[str, Any]:
        history = scope.found.get(key)
        if history is None or history.current is None:
            raise KeyError(key)
        data = inventory.read_small(
            inventory.reader(scope.workers), scope.bucket, key, history.current.version_id
        )
        loaded: dict[str, Any] = json.loads(data)
        return loaded

    try:
        archived = archived_documents(item, read)
    except (KeyError, ValueError, TypeError):
        return item
    return item.model_copy(
        update={"documents": archived.documents, "documents_no_longer_listed": archived.no_longer_listed}
    )


def documents_of(item: InvoiceRecord) -> dict[str, dict[str, Any]]:
    """The ledger's records of every archived document, including those the API no longer lists."""
    records = [*item.documents, *item.documents_no_longer_listed]
    return {str(d["key"]): d for d in records}


def was_archived(item: InvoiceRecord) -> bool:
    """ARCHIVED, or archived once and reopened since (a re-archive): its documents are on record."""
    return item.status is Status.ARCHIVED or bool(item.summary_key)


def objects_to_read(scope: Scope, item: InvoiceRecord) -> int:
    return len(documents_of(item)) + 1 + len(scope.revisions(item))


def unexpected_objects(scope: Scope, items: list[InvoiceRecord], findings: Findings) -> None:
    """Folders without summary.json, objects no ledger item accounts for, overwrites of other keys."""
    by_folder = {scope.folder(i).rstrip("/"): i for i in items}
    expected = {
        key: item
        for item in items
        if was_archived(item)
        for key in [*documents_of(item), str(item.summary_key), *scope.revisions(item)]
    }
    folders: dict[str, list[str]] = {}
    for key, history in sorted(scope.found.items()):
        if key not in expected and len(history.contents) > 1:  # check_invoice reports the others
            findings.add(Problem("overwritten", key, _overwritten(history)))
        if history.current is None:
            continue
        parsed = layout.parse_key(key)
        if parsed is None or parsed.prefix != scope.prefix:
            findings.add(Problem("orphan", key, "outside the archive's key layout"))
        else:
            folders.setdefault(parsed.folder, []).append(key)
    for folder, keys in folders.items():
        item = by_folder.get(folder)
        if item is None:
            for key in keys:
                findings.add(Problem("orphan", key, "belongs to no invoice in the ledger"))
            continue
        who = _who(item)
        if not was_archived(item):
            state = f"ledger: {item.status}: {item.last_error}".rstrip(": ")
            if f"{folder}/{SUMMARY_FILE}" not in keys:
                findings.add(
                    Problem("no-summary", folder + "/", f"incomplete invoice folder ({state})", **who)
                )
            continue
        for key in keys:
            if key not in expected:
                findings.add(Problem("orphan", key, "not one of its invoice's documents", **who))


def check_invoice(
    scope: Scope,
    item: InvoiceRecord,
    findings: Findings,
    stop: threading.Event,
    on_object: Callable[[int], None],
) -> None:
    """One ARCHIVED invoice: its summaries, then every document the ledger lists."""
    who = _who(item)
    records = documents_of(item)
    summary_key = item.summary_key or ""
    latest_key = item.latest_summary_key or summary_key
    summaries: dict[str, dict[str, dict[str, Any]] | None] = {}
    for key in dict.fromkeys([summary_key, *scope.revisions(item), latest_key]):
        summaries[key] = _read_summary(scope, key, findings, who, on_object, first=key == summary_key)
    original, latest = summaries.get(summary_key), summaries.get(latest_key)
    if original is not None and any(
        _fingerprint({k: d}) - _fingerprint(records) for k, d in original.items()
    ):
        findings.add(
            Problem("differs", summary_key, "summary.json lists a document the ledger does not", **who)
        )
    current = {str(d["key"]): d for d in item.documents}
    if latest is not None and _fingerprint(latest) != _fingerprint(current):
        findings.add(
            Problem("differs", latest_key, "the latest summary lists other documents than the ledger", **who)
        )
    for key, record in sorted(records.items()):
        if stop.is_set():
            return
        _check_document(scope, key, record, (latest or {}).get(key), findings, who, stop)
        on_object(int(record.get("size", 0)))


def _read_summary(
    scope: Scope,
    key: str,
    findings: Findings,
    who: dict[str, str],
    on_object: Callable[[int], None],
    *,
    first: bool,
) -> dict[str, dict[str, Any]] | None:
    """A summary's documents by key, after checking its bytes against S3's checksum; None if unreadable."""
    version = _current(scope, key, findings, who, summary=first)
    if version is None:
        on_object(0)
        return None
    s3 = inventory.reader(scope.workers)
    data = inventory.read_small(s3, scope.bucket, key, version.version_id)
    checksum, _ = inventory.stored_checksum(s3, scope.bucket, key, version.version_id)
    digest = inventory.digest_bytes(data)
    if checksum is not None and checksum not in (digest.full_b64, digest.composite_b64):
        findings.add(Problem("differs", key, "bytes do not match S3's stored SHA-256 checksum", **who))
    findings.read(len(data), checksum is not None)
    on_object(len(data))
    try:
        return {str(d["key"]): d for d in json.loads(data)["documents"]}
    except (ValueError, KeyError, TypeError):
        findings.add(Problem("differs", key, "not the archiver's summary JSON", **who))
        return None


def _check_document(
    scope: Scope,
    key: str,
    record: dict[str, Any],
    in_summary: dict[str, Any] | None,
    findings: Findings,
    who: dict[str, str],
    stop: threading.Event,
) -> None:
    version = _current(scope, key, findings, who, summary=False)
    if version is None:
        return
    s3 = inventory.reader(scope.workers)
    checksum, metadata = inventory.stored_checksum(s3, scope.bucket, key, version.version_id)
    digest = inventory.digest(s3, scope.bucket, key, version.version_id, stop)
    findings.read(digest.size, checksum is not None)
    disagree: dict[tuple[str, int], list[str]] = {}
    for source, expected in {"the ledger": record, "the latest summary": in_summary}.items():
        if expected is not None:
            sha256, size = str(expected.get("sha256")), int(expected.get("size", -1))
            if (digest.sha256, digest.size) != (sha256, size):
                disagree.setdefault((sha256, size), []).append(source)
    for (sha256, size), sources in disagree.items():
        detail = (
            f"{digest.size} bytes, SHA-256 {digest.sha256[:16]}...; "
            f"{' and '.join(sources)} {'say' if len(sources) > 1 else 'says'} {size} bytes, {sha256[:16]}..."
        )
        findings.add(Problem("differs", key, detail, **who))
    if checksum is not None and checksum not in (digest.full_b64, digest.composite_b64):
        findings.add(Problem("differs", key, "bytes do not match S3's stored SHA-256 checksum", **who))
    if metadata.get("sha256") not in (None, digest.sha256):
        findings.add(Problem("differs", key, "bytes do not match the object's sha256 metadata", **who))


def _current(
    scope: Scope, key: str, findings: Findings, who: dict[str, str], *, summary: bool
) -> inventory.Version | None:
    """The version to read, after reporting a missing, deleted or overwritten key."""
    history = scope.found.get(key)
    missing = "no-summary" if summary else "missing"
    if history is None or not history.versions:
        detail = (
            "ARCHIVED in the ledger, but summary.json is missing"
            if summary
            else "listed by the ledger, not in the bucket"
        )
        findings.add(Problem(missing, key, detail, **who))
        return None
    if len(history.contents) > 1:
        findings.add(Problem("overwritten", key, _overwritten(history), **who))
    if history.deleted_by is not None:
        detail = (
            f"deleted: delete marker {history.deleted_by} hides it; remove the marker "
            "or re-archive with `backfill --invoice-id`"
        )
        findings.add(Problem(missing, key, detail, **who))
        return None
    return history.current


def _who(item: InvoiceRecord) -> dict[str, str]:
    return {"account_id": item.account_id, "invoice_id": item.invoice_id}


def _overwritten(history: inventory.KeyHistory) -> str:
    return (
        f"{len(history.versions)} versions with {len(history.contents)} different contents: "
        "replaced after it was archived"
    )


def _fingerprint(documents: dict[str, dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {(key, str(d.get("sha256")), int(d.get("size", -1))) for key, d in documents.items()}
