"""invoice_archiver.models.requests: a scheduled EventBridge tick or an explicit re-run/backfill request."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from invoice_archiver.models.requests import ListRequest, ScheduledEvent, parse_lister_event

from .factories import ACCOUNT, FULLWIDTH_ACCOUNT, OTHER_ACCOUNT, EventFactory

# A Scheduled Event exactly as EventBridge delivers it to Lambda (copied from the AWS documentation shape).
REAL_SCHEDULED_EVENT_JSON = """
{
  "version": "0",
  "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
  "detail-type": "Scheduled Event",
  "source": "aws.events",
  "account": "123456789012",
  "time": "2025-09-03T06:15:00Z",
  "region": "us-east-1",
  "resources": ["arn:aws:events:us-east-1:123456789012:rule/invoice-archiver-daily"],
  "detail": {}
}
"""


def make_request(**fields: Any) -> dict[str, Any]:
    """Factory: an explicit request as a person (or the CLI) would send it, JSON-shaped."""
    return json.loads(json.dumps(fields))


def error_text(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return str(exc.value)


# --- scheduled events -----------------------------------------------------------------------------


def test_real_scheduled_event_json_parses_to_a_scheduled_event() -> None:
    # Given the JSON of a real EventBridge Scheduled Event
    event = json.loads(REAL_SCHEDULED_EVENT_JSON)

    # When parsed
    parsed = parse_lister_event(event)

    # Then it is a ScheduledEvent carrying the tick time in UTC
    assert isinstance(parsed, ScheduledEvent)
    assert parsed.source == "aws.events"
    assert parsed.detail_type == "Scheduled Event"
    assert parsed.time == datetime(2025, 9, 3, 6, 15, tzinfo=UTC)
    assert parsed.time.utcoffset() == timedelta(0)


def test_scheduled_event_with_an_offset_keeps_the_instant(scheduled_event: EventFactory) -> None:
    # Given a tick time written with a +02:00 offset
    parsed = parse_lister_event(scheduled_event(time="2025-03-01T01:00:00+02:00"))

    # Then the instant is kept (it is 28 February 23:00 UTC)
    assert isinstance(parsed, ScheduledEvent)
    assert parsed.time == datetime(2025, 2, 28, 23, 0, tzinfo=UTC)


def test_scheduled_event_without_an_offset_is_taken_as_utc(scheduled_event: EventFactory) -> None:
    # Given a tick time without a zone
    parsed = parse_lister_event(scheduled_event(time="2025-08-01T06:00:00"))

    # Then it is read as UTC, never as local time
    assert isinstance(parsed, ScheduledEvent)
    assert parsed.time.tzinfo is not None
    assert parsed.time == datetime(2025, 8, 1, 6, 0, tzinfo=UTC)


def test_scheduled_event_with_a_bad_time_is_refused(scheduled_event: EventFactory) -> None:
    with pytest.raises(ValidationError, match="time"):
        parse_lister_event(scheduled_event(time="yesterday"))


def test_other_eventbridge_events_are_not_taken_for_requests(scheduled_event: EventFactory) -> None:
    # Given an EventBridge event of another detail-type
    event = scheduled_event(**{"detail-type": "Object Created", "source": "aws.s3"})

    # When parsed, Then it is refused (its keys are not a ListRequest)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        parse_lister_event(event)


# --- explicit requests ----------------------------------------------------------------------------


def test_billing_periods_request() -> None:
    # Given a list of billing periods
    parsed = parse_lister_event(make_request(billing_periods=["2025-06", "2025-07"]))

    # Then it is a ListRequest with those periods and no overrides
    assert isinstance(parsed, ListRequest)
    assert parsed.billing_periods == ("2025-06", "2025-07")
    assert parsed.accounts is None
    assert parsed.receiver_roles is None


def test_period_range_request() -> None:
    parsed = parse_lister_event(make_request(from_period="2024-11", to_period="2025-02"))
    assert isinstance(parsed, ListRequest)
    assert (parsed.from_period, parsed.to_period) == ("2024-11", "2025-02")


def test_issue_date_range_request() -> None:
    # Given an issue-date range as ISO dates
    parsed = parse_lister_event(make_request(issued_from="2025-06-01", issued_to="2025-09-15"))

    # Then the dates are typed
    assert isinstance(parsed, ListRequest)
    assert parsed.issued_from == date(2025, 6, 1)
    assert parsed.issued_to == date(2025, 9, 15)


def test_invoice_ids_request() -> None:
    parsed = parse_lister_event(make_request(invoice_ids=["EUINGB25-1", "EUINGB25-2"]))
    assert isinstance(parsed, ListRequest)
    assert parsed.invoice_ids == ("EUINGB25-1", "EUINGB25-2")


def test_accounts_and_roles_overrides_are_kept() -> None:
    # Given a request that overrides the configured accounts and roles
    parsed = parse_lister_event(
        make_request(
            billing_periods=["2025-06"], accounts=[ACCOUNT, OTHER_ACCOUNT], receiver_roles=["SELLER"]
        )
    )

    # Then the overrides are carried as given
    assert isinstance(parsed, ListRequest)
    assert parsed.accounts == (ACCOUNT, OTHER_ACCOUNT)
    assert parsed.receiver_roles == ("SELLER",)


def test_empty_role_override_means_no_role_filter() -> None:
    # Given receiver_roles explicitly empty, Then it is kept as () (distinct from "not given": None)
    parsed = parse_lister_event(make_request(billing_periods=["2025-06"], receiver_roles=[]))
    assert isinstance(parsed, ListRequest)
    assert parsed.receiver_roles == ()


def test_all_selectors_together() -> None:
    parsed = parse_lister_event(
        make_request(
            billing_periods=["2025-01"],
            from_period="2025-02",
            to_period="2025-03",
            issued_from="2025-01-01",
            issued_to="2025-02-01",
            invoice_ids=["X"],
        )
    )
    assert isinstance(parsed, ListRequest)


def test_list_request_is_frozen() -> None:
    request = ListRequest(billing_periods=("2025-06",))
    with pytest.raises(ValidationError, match="frozen"):
        request.billing_periods = ("2025-07",)  # type: ignore[misc]


# --- clear errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["billing_period", "periods", "account_ids", "detail", "dry_run"])
def test_unknown_keys_are_named(key: str) -> None:
    # Given a request with a misspelt or unknown key
    with pytest.raises(ValidationError) as caught:
        parse_lister_event(make_request(billing_periods=["2025-06"], **{key: "x"}))

    # Then the error names that key
    assert key in error_text(caught)
    assert "Extra inputs are not permitted" in error_text(caught)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"from_period": "2025-01"}, "from_period and to_period go together"),
        ({"to_period": "2025-01"}, "from_period and to_period go together"),
        ({"issued_from": "2025-06-01"}, "issued_from and issued_to go together"),
        ({"issued_to": "2025-06-01"}, "issued_from and issued_to go together"),
        ({"issued_from": "2025-06-01", "issued_to": "2025-06-01"}, "issued_to must be after issued_from"),
        ({"issued_from": "2025-06-02", "issued_to": "2025-06-01"}, "issued_to must be after issued_from"),
    ],
)
def test_half_and_empty_ranges_are_refused(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_lister_event(make_request(**fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"billing_periods": ["2025-13"]},
        {"billing_periods": ["2025-06", "June 2025"]},
        {"from_period": "2025-1", "to_period": "2025-02"},
        {"from_period": "2025-01", "to_period": "2025/02"},
    ],
)
def test_bad_periods_are_refused_with_the_offending_text(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_lister_event(make_request(**fields))
    assert "billing period" in error_text(caught)


def test_bad_issue_date_is_refused() -> None:
    with pytest.raises(ValidationError, match="issued_from"):
        parse_lister_event(make_request(issued_from="2025-02-30", issued_to="2025-03-01"))


@pytest.mark.parametrize("account", ["12345", "1234567890123", "12345678901a", " 123456789012", ""])
def test_bad_accounts_are_refused(account: str) -> None:
    with pytest.raises(ValidationError, match="not 12-digit account ids"):
        parse_lister_event(make_request(invoice_ids=["X"], accounts=[ACCOUNT, account]))


@pytest.mark.parametrize("role", ["PAYER", "BUYERS", ""])
def test_bad_roles_are_refused(role: str) -> None:
    with pytest.raises(ValidationError, match=r"unknown receiver roles .*; use SELLER, RESELLER, BUYER"):
        parse_lister_event(make_request(billing_periods=["2025-06"], receiver_roles=[role]))


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"accounts": [ACCOUNT]},
        {"receiver_roles": ["BUYER"]},
        {"billing_periods": [], "invoice_ids": []},
    ],
)
def test_requests_that_select_nothing_are_refused(fields: dict[str, Any]) -> None:
    # Given a request that names no periods, range or invoice
    # When parsed, Then the error says what to name
    with pytest.raises(ValidationError, match="name billing_periods, from_period/to_period"):
        parse_lister_event(make_request(**fields))


@pytest.mark.parametrize("account", [FULLWIDTH_ACCOUNT, "\u00b2" * 12], ids=["fullwidth", "superscript"])
def test_accounts_reject_non_ascii_digits(account: str) -> None:
    # Given an account id of twelve non-ASCII "digits", When parsed, Then it is refused
    with pytest.raises(ValidationError, match="not 12-digit account ids"):
        parse_lister_event(make_request(invoice_ids=["X"], accounts=[account]))


def test_a_request_can_ask_for_a_full_recheck_and_by_default_does_not() -> None:
    # Given the same period asked for plainly and with "recheck"
    plain = parse_lister_event({"billing_periods": ["2026-10"]})
    forced = parse_lister_event({"invoice_ids": ["E1"], "recheck": True})

    # Then only the second forces a re-check of archived invoices
    assert isinstance(plain, ListRequest)
    assert isinstance(forced, ListRequest)
    assert plain.recheck is False
    assert forced.recheck is True
    with pytest.raises(ValidationError):
        parse_lister_event({"recheck": True})  # something to re-check must be named
