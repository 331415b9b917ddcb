"""The emulator learns time: a scenario's `timeline` changes its invoices at given instants.

Each change applies from its `at` (UTC) on, judged by the emulator's clock, which tests control with
`SandboxClock`. A change can issue a new invoice (a late invoice, a credit memo), set or unset
summary fields (EinvoiceDeliveryStatus DELIVERED, TaxAuthorityStatus CANCELLED), and add or remove
supplemental documents (a tax e-invoice attached later, a document withdrawn). See docs/sandbox.md.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from invoice_archiver.sandbox.documents import Document
from invoice_archiver.sandbox.invoice import (
    TIMESTAMP_FIELDS,
    Invoice,
    doc_to_json,
    invoice_from_json,
    invoice_to_json,
    parse_time,
    supplemental_from_json,
)

_KEYS = {"at", "issue", "invoice_id", "set", "unset", "add_documents", "remove_documents"}


@dataclass(frozen=True)
class Change:
    """What happens to the dataset at `at`: one new invoice, or edits to an existing one."""

    at: datetime
    invoice_id: str | None = None
    issue: Invoice | None = None
    set_fields: dict[str, Any] = field(default_factory=dict)
    unset_fields: tuple[str, ...] = ()
    add_documents: tuple[Document, ...] = ()
    remove_documents: tuple[str, ...] = ()


class SandboxClock:
    """A clock the tests move: pass it as `Sandbox(clock=...)` and use `now()` for scheduled events."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self.now()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment.astimezone(UTC)

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


def applied(timeline: Sequence[Change], moment: datetime) -> int:
    """How many changes (sorted by `at`) have happened by `moment`."""
    return sum(1 for change in timeline if change.at <= moment)


def apply(invoices: Iterable[Invoice], timeline: Sequence[Change], moment: datetime) -> list[Invoice]:
    """The invoices as they are at `moment`: every change with `at <= moment` applied in order."""
    state = {inv.invoice_id: inv for inv in invoices}
    for change in sorted(timeline, key=lambda c: c.at):
        if change.at > moment:
            break
        if change.issue is not None:
            state[change.issue.invoice_id] = change.issue
            continue
        assert change.invoice_id is not None
        inv = state[change.invoice_id]
        summary = {k: v for k, v in inv.summary.items() if k not in change.unset_fields}
        summary.update(change.set_fields)
        kept = tuple(d for d in inv.supplemental if d.document_id not in change.remove_documents)
        state[change.invoice_id] = replace(inv, summary=summary, supplemental=kept + change.add_documents)
    return list(state.values())


def parse(items: list[dict[str, Any]], known_ids: set[str]) -> tuple[Change, ...]:
    """The scenario's `timeline` list; every change must name a known invoice or issue a new one."""
    changes: list[Change] = []
    ids = set(known_ids)
    for n, item in enumerate(items):
        unknown = set(item) - _KEYS
        if unknown or "at" not in item:
            raise ValueError(f"timeline[{n}]: needs 'at'; unknown keys {sorted(unknown)}")
        at = parse_time(item["at"])
        if "issue" in item:
            invoice = invoice_from_json(item["issue"])
            if invoice.invoice_id in ids:
                raise ValueError(f"timeline[{n}]: invoice id {invoice.invoice_id!r} already exists")
            ids.add(invoice.invoice_id)
            changes.append(Change(at=at, issue=invoice))
            continue
        invoice_id = str(item.get("invoice_id", ""))
        if invoice_id not in ids:
            raise ValueError(f"timeline[{n}]: unknown invoice_id {invoice_id!r}")
        fields = dict(item.get("set", {}))
        for name in TIMESTAMP_FIELDS:
            if name in fields:
                fields[name] = parse_time(fields[name])
        documents = tuple(supplemental_from_json(invoice_id, doc) for doc in item.get("add_documents", []))
        changes.append(
            Change(
                at=at,
                invoice_id=invoice_id,
                set_fields=fields,
                unset_fields=tuple(item.get("unset", [])),
                add_documents=documents,
                remove_documents=tuple(str(d) for d in item.get("remove_documents", [])),
            )
        )
    return tuple(sorted(changes, key=lambda c: c.at))


def to_json(change: Change) -> dict[str, Any]:

    if change.issue is not None:
        return {"at": change.at.isoformat(), "issue": invoice_to_json(change.issue)}
    fields = {k: v.isoformat() if k in TIMESTAMP_FIELDS else v for k, v in change.set_fields.items()}
    item: dict[str, Any] = {"at": change.at.isoformat(), "invoice_id": change.invoice_id}
    if fields:
        item["set"] = fields
    if change.unset_fields:
        item["unset"] = list(change.unset_fields)
    if change.add_documents:
        item["add_documents"] = [doc_to_json(d) for d in change.add_documents]
    if change.remove_documents:
        item["remove_documents"] = list(change.remove_documents)
    return item
