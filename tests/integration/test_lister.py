"""The lister handler on the sandbox: which periods, which windows, one message per invoice, no URL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from invoice_archiver.dal import clients
from invoice_archiver.handlers import lister
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.local.pipeline import scheduled_event
from invoice_archiver.logic.planning import PlanningError
from invoice_archiver.sandbox.dataset import generate
from tests.integration.conftest import Pipeline

THREE_MONTHS = generate(seed=21, periods=((2026, 8), (2026, 9), (2026, 10)), invoices_per_account_period=5)


def _invoke(event: dict[str, object]) -> dict[str, object]:
    result: dict[str, object] = lister.handler(event, LocalContext("lister-test"))
    return result


def _queued(pipeline: Pipeline) -> list[dict[str, object]]:
    return [json.loads(m["body"]) for m in pipeline.queue_bodies(pipeline.settings.invoice_queue_url)]


def test_a_scheduled_tick_lists_the_last_complete_period_and_the_lookback(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given three billing months of invoices and a look-back of one period
    pipeline = make_pipeline(THREE_MONTHS, env={"LOOKBACK_PERIODS": "1"})

    # When the schedule fires on 5 November 2026
    result = _invoke(scheduled_event(datetime(2026, 11, 5, 6, 0, tzinfo=UTC)))

    # Then October and September are listed (not August), one message per invoice, by BillingPeriod
    assert result["periods"] == ["2026-09", "2026-10"]
    expected = {i.invoice_id for i in THREE_MONTHS.invoices if i.billing_period in {(2026, 9), (2026, 10)}}
    messages = _queued(pipeline)
    assert sorted(str(m["invoice_id"]) for m in messages) == sorted(expected)
    assert result["invoices_listed"] == result["messages_sent"] == len(expected)
    # ... each a pointer: the invoice's identity, its source, why and when, never a fact or a URL
    for message in messages:
        assert set(message) == {
            "version",
            "account_id",
            "invoice_id",
            "billing_period",
            "reason",
            "listed_at",
        }
        assert message["version"] == 2
        assert datetime.fromisoformat(str(message["listed_at"])).tzinfo is not None
        assert "http" not in json.dumps(message)


def test_a_receiver_role_query_before_june_2025_is_refused_before_any_call(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given a lister configured for the BUYER role
    pipeline = make_pipeline(THREE_MONTHS, env={"RECEIVER_ROLES": "BUYER"})

    # When asked to back-fill May 2025
    with pytest.raises(PlanningError, match="2025-05"):
        _invoke({"billing_periods": ["2025-05", "2025-06"]})

    # Then it made no API call and sent nothing
    assert pipeline.sandbox.emulator.stats.snapshot()["calls"] == {}
    assert _queued(pipeline) == []


def test_an_issue_date_range_is_split_into_the_windows_the_api_allows(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given invoices issued over several months, and no receiver role (one month per window at most)
    pipeline = make_pipeline(THREE_MONTHS)
    start, end = date(2026, 9, 1), date(2026, 11, 15)

    # When a back-fill by issue date spans two and a half months
    result = _invoke({"issued_from": start.isoformat(), "issued_to": end.isoformat()})

    # Then every invoice issued in [start, end) is queued exactly once (the emulator enforces the
    # one-month window rule, so an unsplit range would have failed)
    expected = [i.invoice_id for i in THREE_MONTHS.invoices if start <= i.issued_date.date() < end]
    assert expected
    queued = [str(m["invoice_id"]) for m in _queued(pipeline)]
    assert sorted(queued) == sorted(expected)
    assert result["queries"] == 3 * len(THREE_MONTHS.accounts)


def test_with_receiver_roles_one_window_covers_the_whole_range(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given two configured receiver roles
    pipeline = make_pipeline(THREE_MONTHS, env={"RECEIVER_ROLES": "BUYER,SELLER"})

    # When a back-fill by issue date spans more than a year
    result = _invoke({"issued_from": "2025-06-01", "issued_to": "2026-11-20"})

    # Then one query per account and role suffices, and only those roles' invoices are queued
    assert result["queries"] == 2 * len(THREE_MONTHS.accounts)
    expected = [i.invoice_id for i in THREE_MONTHS.invoices if i.receiver_role in {"BUYER", "SELLER"}]
    assert sorted(str(m["invoice_id"]) for m in _queued(pipeline)) == sorted(expected)


def test_a_bad_request_fails_clearly_and_sends_nothing(make_pipeline: Callable[..., Pipeline]) -> None:
    # Given a lister
    pipeline = make_pipeline(THREE_MONTHS)

    # When the event has a typo in a key
    with pytest.raises(ValueError, match="billing_period"):
        _invoke({"billing_period": ["2026-10"]})

    # Then nothing was listed or sent
    assert pipeline.sandbox.emulator.stats.snapshot()["calls"] == {}
    assert _queued(pipeline) == []


def test_entries_sqs_fails_in_a_batch_are_retried_and_none_is_lost_or_doubled(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given SQS that fails the first entry of each of the first three SendMessageBatch calls
    # (the entry is not enqueued and the response lists it under Failed, SenderFault false)
    pipeline = make_pipeline(THREE_MONTHS)
    sqs = clients.sqs()
    dropped: list[str] = []
    pending: list[str] = []

    def drop_first_entry(params: dict[str, Any], **_: Any) -> None:
        if len(dropped) < 3 and len(params["Entries"]) > 1:
            first, *rest = params["Entries"]
            params["Entries"] = rest
            dropped.append(first["Id"])
            pending.append(first["Id"])

    def report_it_failed(parsed: dict[str, Any], **_: Any) -> None:
        if pending:
            parsed["Failed"] = [
                {"Id": pending.pop(), "SenderFault": False, "Code": "InternalError", "Message": "try again"}
            ]

    sqs.meta.events.register("provide-client-params.sqs.SendMessageBatch", drop_first_entry)
    sqs.meta.events.register("after-call.sqs.SendMessageBatch", report_it_failed)

    # When the lister enqueues three months (45 invoices, five batches)
    try:
        result = _invoke({"from_period": "2026-08", "to_period": "2026-10"})
    finally:
        sqs.meta.events.unregister("provide-client-params.sqs.SendMessageBatch", drop_first_entry)
        sqs.meta.events.unregister("after-call.sqs.SendMessageBatch", report_it_failed)

    # Then the failures happened, and still every invoice is on the queue exactly once
    assert len(dropped) == 3
    expected = sorted(i.invoice_id for i in THREE_MONTHS.invoices)
    assert sorted(str(m["invoice_id"]) for m in _queued(pipeline)) == expected
    assert result["messages_sent"] == len(expected)
