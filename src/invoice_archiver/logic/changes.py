"""What changed since the archive last looked at an invoice. Pure: no I/O.

* `fingerprint`: a SHA-256 of the summary as ListInvoiceSummaries returned it (canonical JSON), stored
  in the ledger at archive time; the lister compares it with each listed summary.
* `why_enqueue`: the lister's decision for one listed summary and its ledger item (None: leave it).
* `next_check`: the bounded revisit schedule, days after the invoice's issue date.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from invoice_archiver.dal.ledger.records import InvoiceRecord
from invoice_archiver.dal.ledger.states import Status


class Reason(StrEnum):
    """Why the lister enqueued an invoice (carried in the message, logged, counted)."""

    NEW = "new"  # no ledger item yet
    NOT_ARCHIVED = "not-archived"  # FAILED, RETRYING or in progress: try again
    CHANGED = "changed"  # the summary differs from the archived one
    DUE = "due"  # a scheduled revisit (late documents) is due
    UNANNOUNCED = "unannounced"  # archived, but its event was never confirmed sent
    RECHECK = "recheck"  # asked for explicitly (`"recheck": true`)
    REARCHIVE = "rearchive"  # asked for explicitly (`"rearchive": true`): fetch every document again
    UNSETTLED = "unsettled"  # unsettled, its period no longer listed: re-queued from the ledger's index


def fingerprint(summary: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the JSON-safe summary with sorted keys: equal summaries, equal fingerprints."""
    canonical = json.dumps(summary, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_time(value: object) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else None


def why_enqueue(
    summary_fingerprint: str,
    record: InvoiceRecord | None,
    now: datetime,
    *,
    recheck: bool = False,
    rearchive: bool = False,
) -> Reason | None:
    """Why this listed invoice needs the fetcher, or None when the archive already holds it as listed.

    `rearchive`: an ARCHIVED invoice is enqueued to be archived again (the fetcher's claim takes it,
    fetches every document and keeps what is already there; see dal/ledger/invoices.claim)."""
    if record is None:
        return Reason.NEW
    if record.status is not Status.ARCHIVED:
        return Reason.NOT_ARCHIVED
    if rearchive:
        return Reason.REARCHIVE
    if recheck:
        return Reason.RECHECK
    if record.summary_fingerprint != summary_fingerprint:
        return Reason.CHANGED
    if record.pending_event:
        return Reason.UNANNOUNCED
    due = record.next_check_at
    if due is not None and due <= now:
        return Reason.DUE
    return None


def recheck_wanted(
    record: InvoiceRecord, reason: str | None, listed_at: datetime | None, hinted: str | None = None
) -> bool:
    """The fetcher's view of an ARCHIVED invoice: re-check it, or is this a duplicate delivery?

    A message only points: the lister saw the summary change (`changed`), a revisit fall due (`due`, and
    the ledger still says it is due at the time the lister listed it: a duplicate delivery after the
    revisit finds it moved on), or someone asked (`recheck`). `hinted`: the fingerprint of the summary a
    version 1 message carried, a hint of a change like `changed`. Either way the re-check reads the
    summary from the API, and writes a revision only if the API's summary differs from the archived one.
    """
    if reason in (Reason.CHANGED, Reason.RECHECK):
        return True
    if hinted is not None and record.summary_fingerprint != hinted:
        return True
    if reason == Reason.DUE and listed_at is not None:
        due = record.next_check_at
        return due is not None and due <= listed_at
    return False


def next_check(issued: datetime | None, revisit_days: Sequence[int], after: datetime) -> datetime | None:
    """The first revisit strictly after `after`: issue date + one of `revisit_days`; None when done.

    Each check consumes at least one entry of the schedule, so an invoice gets at most
    len(revisit_days) scheduled re-checks (GetInvoicePDF calls) in its life.
    """
    if issued is None:
        return None
    for days in sorted(revisit_days):
        moment = issued + timedelta(days=days)
        if moment > after:
            return moment
    return None
