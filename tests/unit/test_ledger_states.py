"""The ledger's state machine: the table, the conditions built from it, and the diagram that draws it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from invoice_archiver.dal.ledger import states
from invoice_archiver.dal.ledger.records import status_condition
from invoice_archiver.dal.ledger.states import Event, IllegalTransition, Status

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"
NOW = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)


def test_docs_draw_the_table() -> None:
    drawn = re.search(r"```mermaid\n(.*?)\n```", DOC.read_text(), re.S)
    assert drawn is not None, "docs/ledger.md has no mermaid block"
    assert drawn[1] == states.mermaid()


def test_every_event_leads_to_one_status_and_every_status_is_reachable() -> None:
    assert {states.target(event) for event in Event} <= set(Status)
    reached = set(states.TRANSITIONS.values())
    assert reached == set(Status) - {Status.NEW}


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (Status.ARCHIVED, Event.CLAIM),  # only a re-archive reopens an archived invoice
        (Status.NEW, Event.ARCHIVE),  # nothing is archived without a claim
        (Status.FAILED, Event.ARCHIVE),
        (Status.RETRYING, Event.FAIL),  # a failure is recorded by the worker that holds the claim
        (Status.IN_PROGRESS, Event.RECHECK),  # only an archived invoice is re-checked
    ],
)
def test_what_the_table_does_not_hold_is_refused(status: Status, event: Event) -> None:
    with pytest.raises(IllegalTransition, match=f"{event} is not allowed from {status}"):
        states.after(status, event)


def test_a_condition_allows_exactly_the_table_sources() -> None:
    claim = status_condition("from", states.sources(Event.CLAIM))
    assert claim.expression == "attribute_not_exists(#pk) OR #status IN (:from0, :from1, :from2)"
    assert sorted(claim.values.values()) == ["FAILED", "IN_PROGRESS", "RETRYING"]
    archive = status_condition("from", states.sources(Event.ARCHIVE))
    assert (archive.expression, archive.values, archive.names) == (
        "#status IN (:from0)",
        {":from0": "IN_PROGRESS"},
        {"#status": "status"},
    )


@pytest.mark.parametrize(
    ("status", "updated", "in_dlq", "shown"),
    [
        (Status.ARCHIVED, NOW - timedelta(days=9), True, "ARCHIVED"),
        (Status.FAILED, NOW, False, "FAILED"),
        (Status.IN_PROGRESS, NOW, True, states.IN_DLQ),
        (Status.RETRYING, NOW - timedelta(hours=4), False, states.STUCK),
        (Status.IN_PROGRESS, NOW - timedelta(minutes=5), False, states.IN_FLIGHT),
        (Status.IN_PROGRESS, None, False, states.IN_FLIGHT),
    ],
)
def test_status_derives_what_an_operator_needs(
    status: Status, updated: datetime | None, in_dlq: bool, shown: str
) -> None:
    stale_before = NOW - timedelta(hours=3)
    assert states.derive(status, updated_at=updated, in_dlq=in_dlq, stale_before=stale_before) == shown
