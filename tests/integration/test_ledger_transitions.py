"""DynamoDB itself refuses a transition the ledger's table does not hold (dal/ledger/states.py): each
write's condition is built from the table, so a worker holding a lease still cannot move an invoice from
a status the event does not start from. On moto's server, through the package's own writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import invoices, rechecks
from invoice_archiver.dal.ledger.records import LeaseLost, LedgerKey
from invoice_archiver.dal.ledger.states import Event, Status
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.sandbox.dataset import generate
from tests.integration.conftest import Pipeline

DATASET = generate(seed=18, periods=((2026, 10),), invoices_per_account_period=1, supplemental=(0, 0))
NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
KEY = LedgerKey("123456789012", BillingPeriod(2026, 10), "E-FORCED")


def force(pipeline: Pipeline, status: Status, owner: str) -> None:
    """An item in `status` whose lease `owner` holds: what no sequence of our writes leaves behind."""
    invoices.claim(clients.dynamodb(), pipeline.settings.ledger_table, KEY, owner=owner, now=NOW,
                   lease_seconds=600, attributes={})  # fmt: skip
    clients.dynamodb().update_item(
        TableName=pipeline.settings.ledger_table,
        Key=KEY.item_key(),
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status.value}},
    )


def status_of(pipeline: Pipeline) -> Status:
    record = invoices.get(clients.dynamodb(), pipeline.settings.ledger_table, KEY)
    assert record is not None
    return record.status


def test_a_failed_invoice_is_not_archived_even_under_its_lease(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    pipeline = make_pipeline(DATASET)
    force(pipeline, Status.FAILED, owner="w")
    with pytest.raises(LeaseLost):
        invoices.mark_archived(clients.dynamodb(), pipeline.settings.ledger_table, KEY, owner="w", now=NOW,
                               documents=[], summary_key="s.json", total_bytes=0)  # fmt: skip
    assert status_of(pipeline) is Status.FAILED


def test_an_archived_invoice_is_not_failed_by_a_stale_claim(make_pipeline: Callable[..., Pipeline]) -> None:
    pipeline = make_pipeline(DATASET)
    force(pipeline, Status.ARCHIVED, owner="w")
    with pytest.raises(LeaseLost):
        invoices.record_error(clients.dynamodb(), pipeline.settings.ledger_table, KEY, owner="w", now=NOW,
                              event=Event.FAIL, error="late", retryable=False)  # fmt: skip
    assert status_of(pipeline) is Status.ARCHIVED


def test_a_recheck_lease_is_never_taken_on_an_unfinished_invoice(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    pipeline = make_pipeline(DATASET)
    force(pipeline, Status.RETRYING, owner="gone")
    later = datetime(2026, 11, 4, tzinfo=UTC)  # the lease has long expired
    claim = rechecks.claim_recheck(clients.dynamodb(), pipeline.settings.ledger_table, KEY, owner="r",
                                   now=later, lease_seconds=600)  # fmt: skip
    assert not claim.claimed
    assert claim.status is Status.RETRYING
