"""verify's checks: every archived object read back and compared with the ledger, summary.json, S3's own
checksum and the object's `sha256` metadata; plus what should not be there.

Problem kinds (each with its key):
  missing      a key the ledger lists is not in the bucket, or a delete marker hides it
  differs      the bytes' SHA-256 or size differ from the ledger, summary.json, S3's checksum or metadata
  overwritten  the key has versions with different content: it was replaced after it was archived
  no-summary   an invoice folder without summary.json (incomplete), or an ARCHIVED invoice without one
  orphan       an object that belongs to no invoice of the ledger, or outside the key layout
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from invoice_archiver.cli import inventory
from invoice_archiver.constants import Status
from invoice_archiver.logic.layout import SUMMARY_FILE, invoice_prefix
from invoice_archiver.models.period import BillingPeriod

FOLDER = re.compile(
    r"^(?P<folder>(?P<prefix>.+)/account=(?P<account>\d{12})/period=(?P<period>\d{4}-\d{2})/[^/]+)/[^/]+$"
)


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


def unexpected_objects(
    scope: Scope, items: list[dict[str, Any]], found: dict[str, inventory.KeyHistory], findings: Findings
) -> None:
    """Folders without summary.json, and objects no ledger item accounts for."""
    by_folder = {
        invoice_prefix(
            scope.prefix,
            str(i["account_id"]),
            BillingPeriod.parse(str(i["billing_period"])),
            str(i["invoice_id"]),
        ).rstrip("/"): i
        for i in items
    }
    checked = {
        str(key)
        for i in items
        if i.get("status") == Status.ARCHIVED
        for key in [*(d["key"] for d in i.get("documents", [])), i.get("summary_key")]
    }
    folders: dict[str, list[str]] = {}
    for key, history in sorted(found.items()):
        if key not in checked and len(history.contents) > 1:  # check_invoice reports the others
            findings.add(Problem("overwritten", key, _overwritten(history)))
        if history.current is None:
            continue
        match = FOLDER.match(key)
        if match is None or match["prefix"] != scope.prefix:
            findings.add(Problem("orphan", key, "outside the archive's key layout"))
            continue
        folders.setdefault(match["folder"], []).append(key)
    for folder, keys in folders.items():
        item = by_folder.get(folder)
        names = {key.rpartition("/")[2] for key in keys}
        if item is None:
            for key in keys:
                findings.add(Problem("orphan", key, "belongs to no invoice in the ledger"))
            continue
        who = {"account_id": str(item["account_id"]), "invoice_id": str(item["invoice_id"])}
        if item.get("status") != Status.ARCHIVED:
            state = f"ledger: {item.get('status')}: {item.get('last_error', '')}".rstrip(": ")
            if SUMMARY_FILE not in names:
                findings.add(
                    Problem("no-summary", folder + "/", f"incomplete invoice folder ({state})", **who)
                )
            continue
        listed = {str(d["key"]) for d in item.get("documents", [])} | {str(item.get("summary_key"))}
        for key in keys:
            if key not in listed:
                findings.add(Problem("orphan", key, "not one of its invoice's documents", **who))


def check_invoice(
    scope: Scope,
    item: dict[str, Any],
    found: dict[str, inventory.KeyHistory],
    findings: Findings,
    stop: threading.Event,
    on_object: Callable[[int], None],
    pool: int,
) -> None:
    """One ARCHIVED invoice: summary.json, then every document it and the ledger list."""
    s3 = inventory.reader(pool)
    who = {"account_id": str(item["account_id"]), "invoice_id": str(item["invoice_id"])}
    ledger_docs = {str(d["key"]): d for d in item.get("documents", [])}
    summary_key = str(item.get("summary_key", ""))
    summary_docs: dict[str, dict[str, Any]] | None = None
    version = _current(summary_key, found, findings, who, summary=True)
    if version is None:
        on_object(0)
    else:
        data = inventory.read_small(s3, scope.bucket, summary_key, version.version_id)
        checksum, _ = inventory.stored_checksum(s3, scope.bucket, summary_key, version.version_id)
        digest = inventory.digest_bytes(data)
        if checksum is not None and checksum not in (digest.full_b64, digest.composite_b64):
            findings.add(
                Problem("differs", summary_key, "bytes do not match S3's stored SHA-256 checksum", **who)
            )
        findings.read(len(data), checksum is not None)
        on_object(len(data))
        try:
            summary_docs = {str(d["key"]): d for d in json.loads(data)["documents"]}
        except (ValueError, KeyError, TypeError):
            findings.add(Problem("differs", summary_key, "summary.json is not the archiver's JSON", **who))
    if summary_docs is not None and _fingerprint(summary_docs) != _fingerprint(ledger_docs):
        findings.add(
            Problem("differs", summary_key, "summary.json lists other documents than the ledger", **who)
        )
    for key, record in sorted(ledger_docs.items()):
        if stop.is_set():
            return
        _check_document(scope, key, record, (summary_docs or {}).get(key), found, findings, who, stop, pool)
        on_object(int(record.get("size", 0)))


def _check_document(
    scope: Scope,
    key: str,
    record: dict[str, Any],
    in_summary: dict[str, Any] | None,
    found: dict[str, inventory.KeyHistory],
    findings: Findings,
    who: dict[str, str],
    stop: threading.Event,
    pool: int,
) -> None:
    version = _current(key, found, findings, who, summary=False)
    if version is None:
        return
    s3 = inventory.reader(pool)
    checksum, metadata = inventory.stored_checksum(s3, scope.bucket, key, version.version_id)
    digest = inventory.digest(s3, scope.bucket, key, version.version_id, stop)
    findings.read(digest.size, checksum is not None)
    expected = {
        "the ledger": (str(record.get("sha256")), int(record.get("size", -1))),
        "summary.json": (str((in_summary or {}).get("sha256")), int((in_summary or {}).get("size", -1))),
    }
    for source, (sha256, size) in expected.items():
        if source == "summary.json" and in_summary is None:
            continue
        if digest.sha256 != sha256 or digest.size != size:
            findings.add(
                Problem(
                    "differs",
                    key,
                    f"{digest.size} bytes, SHA-256 {digest.sha256[:16]}...; "
                    f"{source} says {size} bytes, {sha256[:16]}...",
                    **who,
                )
            )
    if checksum is not None and checksum not in (digest.full_b64, digest.composite_b64):
        findings.add(Problem("differs", key, "bytes do not match S3's stored SHA-256 checksum", **who))
    if metadata.get("sha256") not in (None, digest.sha256):
        findings.add(Problem("differs", key, "bytes do not match the object's sha256 metadata", **who))


def _current(
    key: str,
    found: dict[str, inventory.KeyHistory],
    findings: Findings,
    who: dict[str, str],
    *,
    summary: bool,
) -> inventory.Version | None:
    """The version to read, after reporting a missing, deleted or overwritten key."""
    history = found.get(key)
    if history is None or not history.versions:
        kind, detail = (
            ("no-summary", "ARCHIVED in the ledger, but summary.json is missing")
            if summary
            else ("missing", "listed by the ledger, not in the bucket")
        )
        findings.add(Problem(kind, key, detail, **who))
        return None
    if len(history.contents) > 1:
        findings.add(Problem("overwritten", key, _overwritten(history), **who))
    if history.deleted_by is not None:
        findings.add(
            Problem(
                "no-summary" if summary else "missing",
                key,
                f"deleted: delete marker {history.deleted_by} hides it; remove the marker "
                "or re-archive with `backfill --invoice-id`",
                **who,
            )
        )
        return None
    return history.current


def _overwritten(history: inventory.KeyHistory) -> str:
    return (
        f"{len(history.versions)} versions with {len(history.contents)} different contents: "
        "replaced after it was archived"
    )


def _fingerprint(documents: dict[str, dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {(key, str(d.get("sha256")), int(d.get("size", -1))) for key, d in documents.items()}
