"""Every status an invoice takes in the ledger, the events that move it, and what `status` derives.

The transition table is the ledger's contract: each conditional write in this package names its event,
and its DynamoDB condition allows exactly the statuses the table lists as that event's sources, so a
write the table does not allow is refused by DynamoDB, not only by our code. docs/ledger.md draws the
table (`mermaid()`), and a test keeps the drawing equal to it.

Besides its status, an invoice is *unsettled* (it holds `unsettled_since`, and is in the `Unsettled`
index) from its claim until it is ARCHIVED with its event sent, or FAILED for good; and it may hold a
*lease* (`lease_owner`, `lease_expires_at`) while a worker archives or re-checks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Final


class Status(StrEnum):
    """The status attribute of an invoice's item. NEW is no item at all (never written)."""

    NEW = "NEW"
    IN_PROGRESS = "IN_PROGRESS"
    RETRYING = "RETRYING"
    ARCHIVED = "ARCHIVED"
    FAILED = "FAILED"


class Event(StrEnum):
    """A conditional write, named by what it does (the function that sends it in parentheses)."""

    CLAIM = "claim"  # invoices.claim: take the invoice, with a lease (or the lease of a dead worker)
    REOPEN = "reopen"  # invoices.claim, re-archive: take an invoice archived before the request
    ARCHIVE = "archive"  # invoices.mark_archived: every document and the summary are written
    RETRY = "retry"  # invoices.record_error: a transient failure, released for the next delivery
    FAIL = "fail"  # invoices.record_error: a permanent failure (or a source that cannot be read)
    RECHECK = "recheck"  # rechecks.claim_recheck .. finish/release: a lease on an archived invoice
    ANNOUNCED = "announced"  # rechecks.confirm_announced: EventBridge accepted the event


# status x event -> status. Anything not here is refused.
TRANSITIONS: Final[dict[tuple[Status, Event], Status]] = {
    (Status.NEW, Event.CLAIM): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, Event.CLAIM): Status.IN_PROGRESS,  # only once the lease has expired
    (Status.RETRYING, Event.CLAIM): Status.IN_PROGRESS,
    (Status.FAILED, Event.CLAIM): Status.IN_PROGRESS,
    (Status.ARCHIVED, Event.REOPEN): Status.IN_PROGRESS,  # only if archived before the request
    (Status.IN_PROGRESS, Event.ARCHIVE): Status.ARCHIVED,
    (Status.IN_PROGRESS, Event.RETRY): Status.RETRYING,
    (Status.IN_PROGRESS, Event.FAIL): Status.FAILED,
    (Status.ARCHIVED, Event.RECHECK): Status.ARCHIVED,
    (Status.ARCHIVED, Event.ANNOUNCED): Status.ARCHIVED,  # settles it
}


class IllegalTransition(ValueError):
    """An event the table does not allow from that status."""


def after(status: Status, event: Event) -> Status:
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition(f"{event} is not allowed from {status}") from None


def target(event: Event) -> Status:
    """The one status an event leads to (the table never sends one event to two statuses)."""
    (status,) = {to for (_, on), to in TRANSITIONS.items() if on is event}
    return status


def sources(event: Event) -> list[Status]:
    """The statuses an event is allowed from, in the table's order."""
    return [status for (status, on) in TRANSITIONS if on is event]


def stored(statuses: Iterable[Status]) -> list[Status]:
    """The statuses an item can hold (NEW has no item, and is written as attribute_not_exists)."""
    return [status for status in statuses if status is not Status.NEW]


# What `invoice-archiver status` shows: the status, or what it means while it is unfinished.
IN_FLIGHT: Final = "IN_FLIGHT"  # IN_PROGRESS or RETRYING, touched recently
STUCK: Final = "STUCK"  # IN_PROGRESS or RETRYING, untouched for longer than --stuck-after
IN_DLQ: Final = "IN_DLQ"  # unfinished, and its message is in the dead-letter queue
DERIVED: Final = (IN_FLIGHT, STUCK, IN_DLQ)


def derive(status: Status, *, updated_at: datetime | None, in_dlq: bool, stale_before: datetime) -> str:
    """ARCHIVED and FAILED as they are; an unfinished invoice IN_DLQ, STUCK or IN_FLIGHT."""
    if status in (Status.ARCHIVED, Status.FAILED):
        return status.value
    if in_dlq:
        return IN_DLQ
    if updated_at is not None and updated_at < stale_before:
        return STUCK
    return IN_FLIGHT


def mermaid() -> str:
    """The table as a Mermaid state diagram (docs/ledger.md holds this text, a test compares them)."""
    lines = ["stateDiagram-v2"]
    for (source, event), to in TRANSITIONS.items():
        start = "[*]" if source is Status.NEW else source.value
        lines.append(f"    {start} --> {to.value}: {event.value}")
    return "\n".join(lines)
