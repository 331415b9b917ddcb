"""invoice_archiver.logic.planning: which ListInvoiceSummaries queries a run makes, within the API's rules."""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import pairwise
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape
from botocore.validate import validate_parameters

from invoice_archiver.logic.planning import (
    ROLE_DATA_START,
    PlanningError,
    SummaryQuery,
    plan_request,
    plan_scheduled,
    scheduled_periods,
    split_windows,
)
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.requests import ListRequest
from invoice_archiver.models.source import Source, SourceRefused

from .factories import ACCOUNT, OTHER_ACCOUNT

THIRD_ACCOUNT = "555555555555"

TWO_SOURCES = [Source(ACCOUNT), Source(OTHER_ACCOUNT)]


def at(text: str) -> datetime:
    """Factory: a UTC instant from 'YYYY-MM-DD[THH:MM]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_list_request(**fields: Any) -> ListRequest:
    """Factory: a validated explicit request (as parse_lister_event would return it)."""
    return ListRequest.model_validate(fields)


def periods_of(queries: Sequence[SummaryQuery]) -> list[str]:
    return [str(q.billing_period) for q in queries]


@cache
def list_summaries_input() -> Shape:
    """The real ListInvoiceSummaries input shape from botocore's bundled model (no network)."""
    model = botocore.session.get_session().get_service_model("invoicing")
    return model.operation_model("ListInvoiceSummaries").input_shape


def assert_valid_api_request(query: SummaryQuery) -> None:
    validate_parameters(query.request(), list_summaries_input())


# --- scheduled runs -------------------------------------------------------------------------------


def test_scheduled_periods_are_the_last_complete_one_and_the_lookback() -> None:
    # Given a tick on 1 August, When two periods of look-back are asked for
    periods = scheduled_periods(at("2025-08-01T06:00"), 2)

    # Then July (the last complete month) and the two before it, oldest first
    assert [str(p) for p in periods] == ["2025-05", "2025-06", "2025-07"]


def test_scheduled_periods_without_lookback_and_across_years() -> None:
    assert [str(p) for p in scheduled_periods(at("2025-08-31T23:59"), 0)] == ["2025-07"]
    assert [str(p) for p in scheduled_periods(at("2026-01-15"), 2)] == ["2025-10", "2025-11", "2025-12"]


def test_scheduled_without_roles_is_one_unfiltered_query_per_account_and_period() -> None:
    # Given two accounts, no roles and one period of look-back
    queries = plan_scheduled(at("2025-03-02"), TWO_SOURCES, [], 1)

    # Then account x period queries, none with a ReceiverRole filter
    assert [(q.account_id, str(q.billing_period)) for q in queries] == [
        (ACCOUNT, "2025-01"),
        (ACCOUNT, "2025-02"),
        (OTHER_ACCOUNT, "2025-01"),
        (OTHER_ACCOUNT, "2025-02"),
    ]
    for query in queries:
        assert query.receiver_role is None
        assert query.invoice_id is None
        assert "ReceiverRole" not in query.request()["Filter"]
        assert_valid_api_request(query)


def test_scheduled_with_roles_is_accounts_times_roles_times_periods() -> None:
    # Given two accounts, two roles and periods all after ReceiverRole data starts
    queries = plan_scheduled(at("2025-10-05"), TWO_SOURCES, ["SELLER", "BUYER"], 1)

    # Then every combination, once
    combos = Counter((q.account_id, q.receiver_role, str(q.billing_period)) for q in queries)
    assert set(combos.values()) == {1}
    assert set(combos) == {
        (account, role, period)
        for account in (ACCOUNT, OTHER_ACCOUNT)
        for role in ("SELLER", "BUYER")
        for period in ("2025-08", "2025-09")
    }
    for query in queries:
        assert query.request()["Filter"]["ReceiverRole"] == query.receiver_role
        assert_valid_api_request(query)


def test_scheduled_with_roles_skips_periods_before_role_data() -> None:
    # Given a tick in August 2025 with four periods of look-back (April to July)
    queries = plan_scheduled(at("2025-08-01"), [Source(ACCOUNT)], ["BUYER"], 3)

    # Then only June and July are listed: April and May predate ReceiverRole data
    assert periods_of(queries) == ["2025-06", "2025-07"]
    assert BillingPeriod(2025, 6) == ROLE_DATA_START


def test_scheduled_without_roles_does_not_skip_early_periods() -> None:
    queries = plan_scheduled(at("2025-08-01"), [Source(ACCOUNT)], [], 3)
    assert periods_of(queries) == ["2025-04", "2025-05", "2025-06", "2025-07"]


def test_scheduled_with_roles_before_role_data_plans_nothing_rather_than_failing() -> None:
    # Given an early deployment whose whole look-back predates role data
    # When planned, Then no query (and no error: that is not this run's fault)
    assert plan_scheduled(at("2025-05-15"), [Source(ACCOUNT)], ["SELLER"], 2) == []


def test_scheduled_plan_sizes_over_many_ticks() -> None:
    # Given ticks every month from 2024 to 2027 and look-backs 0..5
    accounts = [Source(ACCOUNT), Source(OTHER_ACCOUNT), Source(THIRD_ACCOUNT)]
    roles = ["SELLER", "RESELLER", "BUYER"]
    for months in range(48):
        now = at(f"{2024 + months // 12}-{months % 12 + 1:02d}-01T00:30")
        for lookback in range(6):
            periods = scheduled_periods(now, lookback)
            with_roles = plan_scheduled(now, accounts, roles, lookback)
            without = plan_scheduled(now, accounts, [], lookback)

            # Then the sizes follow accounts x roles x eligible periods
            eligible = [p for p in periods if p >= ROLE_DATA_START]
            assert len(periods) == lookback + 1
            assert len(without) == len(accounts) * len(periods)
            assert len(with_roles) == len(accounts) * len(roles) * len(eligible)
            assert all(
                q.billing_period is not None and q.billing_period >= ROLE_DATA_START for q in with_roles
            )
            assert all(q.receiver_role is None for q in without)


# --- explicit requests ----------------------------------------------------------------------------


def test_request_periods_are_merged_deduplicated_and_sorted() -> None:
    # Given listed periods that overlap a range
    request = make_list_request(
        billing_periods=["2025-08", "2025-06", "2025-08"], from_period="2025-06", to_period="2025-07"
    )

    # When planned for one account without roles
    queries = plan_request(request, [Source(ACCOUNT)], [])

    # Then each period once, oldest first
    assert periods_of(queries) == ["2025-06", "2025-07", "2025-08"]


def test_request_with_roles_and_an_early_period_names_the_period() -> None:
    # Given configured roles and periods on both sides of June 2025
    request = make_list_request(billing_periods=["2025-04", "2025-05", "2025-06"])

    # When planned, Then PlanningError naming both early periods (and not June)
    with pytest.raises(PlanningError) as caught:
        plan_request(request, [Source(ACCOUNT)], ["SELLER"])
    message = str(caught.value)
    assert "2025-04, 2025-05" in message
    assert "2025-06," not in message
    assert "SELLER" in message
    assert "2025-06-01" in message


def test_request_with_roles_and_an_early_range_names_the_periods() -> None:
    request = make_list_request(from_period="2025-05", to_period="2025-07")
    with pytest.raises(PlanningError, match=r"cannot list 2025-05 with receiver roles BUYER"):
        plan_request(request, [Source(ACCOUNT)], ["BUYER"])


def test_request_with_roles_and_early_issued_from_names_the_date() -> None:
    # Given roles and an issue-date range starting the day before role data exists
    request = make_list_request(issued_from="2025-05-31", issued_to="2025-07-01")

    # When planned, Then PlanningError naming issued_from
    with pytest.raises(PlanningError, match=r"issued_from 2025-05-31 is earlier"):
        plan_request(request, [Source(ACCOUNT)], ["RESELLER"])


def test_request_with_roles_from_the_first_day_of_role_data_is_fine() -> None:
    request = make_list_request(billing_periods=["2025-06"], issued_from="2025-06-01", issued_to="2025-06-02")
    queries = plan_request(request, [Source(ACCOUNT)], ["RESELLER"])
    assert {q.receiver_role for q in queries} == {"RESELLER"}


def test_planning_error_is_raised_before_any_query_is_returned() -> None:
    # Given a mostly valid request with one early period: the whole plan is refused (no partial run)
    request = make_list_request(billing_periods=["2025-07", "2025-08", "2025-01"], invoice_ids=["X"])
    with pytest.raises(PlanningError, match="2025-01"):
        plan_request(request, TWO_SOURCES, ["BUYER"])
    assert issubclass(PlanningError, ValueError)


def test_without_roles_early_periods_and_dates_are_fine() -> None:
    request = make_list_request(billing_periods=["2024-01"], issued_from="2024-01-01", issued_to="2024-02-01")
    queries = plan_request(request, [Source(ACCOUNT)], [])
    assert [q.receiver_role for q in queries] == [None, None]


def test_request_accounts_narrow_the_configured_ones() -> None:
    # Given configured accounts A and B, and a request for B only
    request = make_list_request(billing_periods=["2025-06"], accounts=[OTHER_ACCOUNT])

    # When planned, Then only B is queried, through B's own source
    queries = plan_request(request, TWO_SOURCES, [])
    assert [(q.account_id, q.role_arn) for q in queries] == [(OTHER_ACCOUNT, None)]


def test_request_accounts_never_widen_the_configured_ones() -> None:
    # Given configured accounts A and B, and a request (a lister event, a continuation) naming C
    request = make_list_request(billing_periods=["2025-06"], accounts=[OTHER_ACCOUNT, THIRD_ACCOUNT])

    # When planned, Then refused, naming C: a request may narrow the sources, never widen them
    with pytest.raises(SourceRefused, match=f"account {THIRD_ACCOUNT} is not a source of this archive"):
        plan_request(request, TWO_SOURCES, [])


def test_configured_accounts_apply_when_the_request_names_none() -> None:
    queries = plan_request(make_list_request(billing_periods=["2025-06"]), TWO_SOURCES, [])
    assert [q.account_id for q in queries] == [ACCOUNT, OTHER_ACCOUNT]


def test_request_roles_override_the_configured_ones() -> None:
    # Given configured SELLER and a request for BUYER
    request = make_list_request(billing_periods=["2025-06"], receiver_roles=["BUYER"])

    # When planned, Then BUYER only
    queries = plan_request(request, [Source(ACCOUNT)], ["SELLER"])
    assert [q.receiver_role for q in queries] == ["BUYER"]


def test_empty_request_roles_drop_the_configured_roles_and_their_period_rule() -> None:
    # Given configured roles, and a request that asks for no role filter and an early period
    request = make_list_request(billing_periods=["2024-03"], receiver_roles=[])

    # When planned, Then one unfiltered query and no PlanningError
    queries = plan_request(request, [Source(ACCOUNT)], ["SELLER", "BUYER"])
    assert [(q.receiver_role, str(q.billing_period)) for q in queries] == [(None, "2024-03")]


def test_request_roles_trigger_the_period_rule_even_without_configured_roles() -> None:
    request = make_list_request(billing_periods=["2025-05"], receiver_roles=["SELLER"])
    with pytest.raises(PlanningError, match="2025-05"):
        plan_request(request, [Source(ACCOUNT)], [])


def test_invoice_ids_become_deduplicated_invoice_id_selector_queries() -> None:
    # Given invoice ids with a repeat, and configured accounts and roles
    request = make_list_request(invoice_ids=["INV-2", "INV-1", "INV-2", "INV-3", "INV-1"])

    # When planned
    queries = plan_request(request, TWO_SOURCES, ["SELLER"])

    # Then one INVOICE_ID query per distinct id, first-seen order, with no account, role or filter
    assert [q.invoice_id for q in queries] == ["INV-2", "INV-1", "INV-3"]
    assert [q.request() for q in queries] == [
        {"Selector": {"ResourceType": "INVOICE_ID", "Value": invoice_id}}
        for invoice_id in ("INV-2", "INV-1", "INV-3")
    ]
    for query in queries:
        assert_valid_api_request(query)


def test_issued_range_is_split_per_role_and_account() -> None:
    # Given a three-month issue range, two accounts, and no roles
    request = make_list_request(issued_from="2025-06-15", issued_to="2025-09-10")
    queries = plan_request(request, TWO_SOURCES, [])

    # Then each account gets the four calendar-month windows
    windows = [(q.account_id, q.window) for q in queries]
    assert len(windows) == 8
    assert {q.account_id for q in queries} == {ACCOUNT, OTHER_ACCOUNT}
    assert sorted(w for a, w in windows if a == ACCOUNT) == split_windows(
        date(2025, 6, 15), date(2025, 9, 10), with_role=False
    )

    # And with two roles, each role x account gets one window (at most five years apart)
    with_roles = plan_request(request, TWO_SOURCES, ["SELLER", "BUYER"])
    assert Counter((q.account_id, q.receiver_role) for q in with_roles) == {
        (a, r): 1 for a in (ACCOUNT, OTHER_ACCOUNT) for r in ("SELLER", "BUYER")
    }
    for query in queries + with_roles:
        assert query.billing_period is None
        assert_valid_api_request(query)


def test_request_with_no_accounts_and_no_invoice_ids_is_a_planning_error() -> None:
    request = make_list_request(billing_periods=["2025-06"], accounts=[])
    with pytest.raises(PlanningError, match="nothing to list"):
        plan_request(request, [Source(ACCOUNT)], [])


def test_invoice_ids_need_no_accounts() -> None:
    request = make_list_request(invoice_ids=["INV-1"], accounts=[])
    assert [q.invoice_id for q in plan_request(request, [], [])] == ["INV-1"]


def test_backwards_period_range_is_refused() -> None:
    request = make_list_request(from_period="2025-08", to_period="2025-06")
    with pytest.raises(ValueError, match="before it starts"):
        plan_request(request, [Source(ACCOUNT)], [])


def test_repeated_request_accounts_and_roles_plan_each_query_once() -> None:
    # Given a request naming the same account and role twice
    request = make_list_request(
        billing_periods=["2025-06"], accounts=[ACCOUNT, ACCOUNT], receiver_roles=["BUYER", "BUYER"]
    )

    # When planned, Then one query (not four: each would enqueue every invoice again)
    queries = plan_request(request, [Source(ACCOUNT)], [])
    assert len(queries) == 1


# --- split_windows --------------------------------------------------------------------------------


def sample_days() -> list[date]:
    """Factory: every 3rd day of 2023-2025, plus month ends and leap days."""
    days = [date(2023, 1, 1) + timedelta(days=n) for n in range(0, 3 * 366, 3)]
    days += [date(y, m, calendar.monthrange(y, m)[1]) for y in (2023, 2024) for m in range(1, 13)]
    days += [date(2024, 2, 29), date(2028, 2, 29)]
    return days


def assert_covers_exactly(windows: list[tuple[datetime, datetime]], start: date, end: date) -> None:
    assert windows[0][0] == datetime(start.year, start.month, start.day, tzinfo=UTC)
    assert windows[-1][1] == datetime(end.year, end.month, end.day, tzinfo=UTC)
    for (_, stop), (next_start, _) in pairwise(windows):
        assert stop == next_start  # contiguous: no gap, no overlap
    for window_start, window_end in windows:
        assert window_start < window_end
        assert window_start.utcoffset() == timedelta(0)
        assert window_end.utcoffset() == timedelta(0)
        assert window_start.time() == window_end.time() == datetime.min.time()


def test_split_without_role_uses_calendar_months() -> None:
    # Given 15 January to 10 April, When split without a role
    windows = split_windows(date(2025, 1, 15), date(2025, 4, 10), with_role=False)

    # Then one window per calendar month, the ends clipped to the range
    assert [(s.date().isoformat(), e.date().isoformat()) for s, e in windows] == [
        ("2025-01-15", "2025-02-01"),
        ("2025-02-01", "2025-03-01"),
        ("2025-03-01", "2025-04-01"),
        ("2025-04-01", "2025-04-10"),
    ]


def test_split_without_role_properties_over_many_ranges() -> None:
    # Given many start days and range lengths from one day to over a year
    for start in sample_days():
        for length in (1, 2, 27, 28, 29, 30, 31, 32, 45, 61, 90, 400):
            end = start + timedelta(days=length)

            # When split without a role
            windows = split_windows(start, end, with_role=False)

            # Then the windows cover [start, end) exactly, contiguously
            assert_covers_exactly(windows, start, end)
            for window_start, window_end in windows:
                days_in_start_month = calendar.monthrange(window_start.year, window_start.month)[1]
                last_instant = window_end - timedelta(microseconds=1)
                # each within one calendar month ...
                assert (last_instant.year, last_instant.month) == (window_start.year, window_start.month)
                # ... and never longer than the days of its start date's month
                assert (window_end - window_start).days <= days_in_start_month


def test_split_with_role_uses_one_window_up_to_five_years() -> None:
    windows = split_windows(date(2025, 6, 1), date(2030, 6, 1), with_role=True)
    assert windows == [(datetime(2025, 6, 1, tzinfo=UTC), datetime(2030, 6, 1, tzinfo=UTC))]


def test_split_with_role_longer_than_five_years() -> None:
    windows = split_windows(date(2025, 6, 1), date(2036, 1, 1), with_role=True)
    assert [(s.date().isoformat(), e.date().isoformat()) for s, e in windows] == [
        ("2025-06-01", "2030-06-01"),
        ("2030-06-01", "2035-06-01"),
        ("2035-06-01", "2036-01-01"),
    ]


def test_split_with_role_from_29_february() -> None:
    # Given a start on 29 February (the date does not exist five years later)
    windows = split_windows(date(2028, 2, 29), date(2040, 1, 1), with_role=True)

    # Then the first window ends on 28 February, within five years, and the rest follow on
    assert windows[0] == (datetime(2028, 2, 29, tzinfo=UTC), datetime(2033, 2, 28, tzinfo=UTC))
    assert_covers_exactly(windows, date(2028, 2, 29), date(2040, 1, 1))


def test_split_with_role_properties_over_many_ranges() -> None:
    for start in sample_days():
        for years, extra_days in ((0, 1), (1, 0), (5, 0), (5, 1), (11, 17)):
            end = start.replace(day=min(start.day, 28)) + timedelta(days=365 * years + extra_days)
            if end <= start:
                continue
            windows = split_windows(start, end, with_role=True)
            assert_covers_exactly(windows, start, end)
            for window_start, window_end in windows:
                # at most five calendar years (28 February for a 29 February start)
                limit_day = min(window_start.day, 28) if window_start.month == 2 else window_start.day
                limit = window_start.replace(year=window_start.year + 5, day=limit_day)
                assert window_end <= limit


def test_split_of_an_empty_range_is_empty() -> None:
    for with_role in (True, False):
        assert split_windows(date(2025, 6, 1), date(2025, 6, 1), with_role=with_role) == []


# --- SummaryQuery.request -------------------------------------------------------------------------


def test_request_for_account_and_period() -> None:
    query = SummaryQuery(account_id=ACCOUNT, billing_period=BillingPeriod(2025, 6))
    assert query.request() == {
        "Selector": {"ResourceType": "ACCOUNT_ID", "Value": ACCOUNT},
        "Filter": {"BillingPeriod": {"Month": 6, "Year": 2025}},
    }
    assert query.describe() == f"account {ACCOUNT}, period 2025-06"


def test_request_for_account_period_and_role() -> None:
    query = SummaryQuery(account_id=ACCOUNT, receiver_role="SELLER", billing_period=BillingPeriod(2025, 12))
    assert query.request() == {
        "Selector": {"ResourceType": "ACCOUNT_ID", "Value": ACCOUNT},
        "Filter": {"BillingPeriod": {"Month": 12, "Year": 2025}, "ReceiverRole": "SELLER"},
    }
    assert query.describe() == f"account {ACCOUNT}, period 2025-12, role SELLER"


def test_request_for_a_time_window_has_utc_datetimes() -> None:
    # Given a window from split_windows
    (window,) = split_windows(date(2025, 7, 3), date(2025, 7, 20), with_role=False)
    query = SummaryQuery(account_id=ACCOUNT, window=window)

    # When rendered
    params = query.request()

    # Then TimeInterval holds timezone-aware UTC datetimes at midnight, and nothing else is filtered
    assert params == {
        "Selector": {"ResourceType": "ACCOUNT_ID", "Value": ACCOUNT},
        "Filter": {
            "TimeInterval": {
                "StartDate": datetime(2025, 7, 3, tzinfo=UTC),
                "EndDate": datetime(2025, 7, 20, tzinfo=UTC),
            }
        },
    }
    for moment in params["Filter"]["TimeInterval"].values():
        assert isinstance(moment, datetime)
        assert moment.utcoffset() == timedelta(0)
    assert query.describe() == f"account {ACCOUNT}, issued 2025-07-03..2025-07-20"
    assert_valid_api_request(query)


def test_request_for_an_invoice_id_has_no_filter() -> None:
    query = SummaryQuery(invoice_id="EUINGB25-1")
    assert query.request() == {"Selector": {"ResourceType": "INVOICE_ID", "Value": "EUINGB25-1"}}
    assert query.describe() == "invoice EUINGB25-1"
