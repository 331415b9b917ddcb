"""invoice_archiver.models.period: one calendar month as the API's BillingPeriod {Month, Year}."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise

import pytest

from invoice_archiver.models.period import BillingPeriod, last_complete_period, period_range


def every_period(first: str = "2000-01", last: str = "2030-12") -> list[BillingPeriod]:
    """Factory: each month from first to last, built without the code under test."""
    (y0, m0), (y1, m1) = (map(int, first.split("-")), map(int, last.split("-")))
    return [BillingPeriod(i // 12, i % 12 + 1) for i in range(y0 * 12 + m0 - 1, y1 * 12 + m1)]


def test_parse_and_str_round_trip_for_every_month() -> None:
    # Given every month of three decades
    for period in every_period():
        # When printed and parsed back
        text = str(period)

        # Then the text is YYYY-MM and parses to the same period
        assert text == f"{period.year:04d}-{period.month:02d}"
        assert BillingPeriod.parse(text) == period


def test_parse_ignores_surrounding_whitespace() -> None:
    # Given a period with spaces and a newline around it, When parsed, Then it is the same month
    assert BillingPeriod.parse("  2025-03\n") == BillingPeriod(2025, 3)


@pytest.mark.parametrize(
    "text",
    ["", "2025", "2025-3", "2025-003", "25-03", "2025/03", "2025-03-01", "03-2025", "2025-00", "2025-13",
     "1999-12", "3000-01", "abcd-ef", "2025 -03", "2025-03x"],
)  # fmt: skip
def test_parse_rejects_what_is_not_a_billing_period(text: str) -> None:
    # Given a malformed period, When parsed, Then ValueError
    with pytest.raises(ValueError, match=r"billing period|not a billing period"):
        BillingPeriod.parse(text)


@pytest.mark.parametrize(("year", "month"), [(2025, 0), (2025, 13), (1999, 12), (3000, 1), (2025, -1)])
def test_constructor_rejects_out_of_range_values(year: int, month: int) -> None:
    # Given a month or year out of range, When built, Then ValueError
    with pytest.raises(ValueError, match="not a billing period"):
        BillingPeriod(year, month)


def test_api_shape_round_trip() -> None:
    # Given a period, When converted to the API shape and back
    period = BillingPeriod(2025, 6)
    api = period.to_api()

    # Then it is {Month, Year} with ints, and it reads back (also from strings)
    assert api == {"Month": 6, "Year": 2025}
    assert BillingPeriod.from_api(api) == period
    assert BillingPeriod.from_api({"Month": "6", "Year": "2025"}) == period


def test_of_takes_the_month_of_a_date_or_datetime() -> None:
    assert BillingPeriod.of(date(2024, 2, 29)) == BillingPeriod(2024, 2)
    assert BillingPeriod.of(datetime(2024, 12, 31, 23, 59, tzinfo=UTC)) == BillingPeriod(2024, 12)


def test_start_is_midnight_utc_on_the_first() -> None:
    assert BillingPeriod(2025, 6).start == datetime(2025, 6, 1, tzinfo=UTC)
    assert BillingPeriod(2025, 6).start.utcoffset() == timedelta(0)


def test_periods_order_chronologically() -> None:
    # Given periods across a year boundary, When sorted, Then chronological (not lexical by month)
    periods = [BillingPeriod(2025, 1), BillingPeriod(2024, 12), BillingPeriod(2024, 2)]
    assert sorted(periods) == [BillingPeriod(2024, 2), BillingPeriod(2024, 12), BillingPeriod(2025, 1)]


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2025-01", -1, "2024-12"),
        ("2024-12", 1, "2025-01"),
        ("2025-03", -3, "2024-12"),
        ("2025-03", -15, "2023-12"),
        ("2025-11", 14, "2027-01"),
        ("2025-06", 0, "2025-06"),
        ("2025-06", -24, "2023-06"),
    ],
)
def test_shift_crosses_years(start: str, months: int, expected: str) -> None:
    # Given a period, When shifted by some months, Then the calendar month that many months away
    assert str(BillingPeriod.parse(start).shift(months)) == expected


def test_shift_is_consistent_with_counting_months() -> None:
    # Given every month of three decades, When shifted by +1 and -1
    periods = every_period()
    for before, after in pairwise(periods):
        # Then the neighbours are the next and previous month, and shifts undo each other
        assert before.shift(1) == after
        assert after.shift(-1) == before
        assert before.shift(37).shift(-37) == before


def test_shift_out_of_range_raises() -> None:
    with pytest.raises(ValueError, match="not a billing period"):
        BillingPeriod(2000, 1).shift(-1)


# --- last_complete_period -------------------------------------------------------------------------


def test_last_complete_period_is_the_previous_utc_month() -> None:
    # Given moments through a year, When the last complete period is asked for
    for month in range(1, 13):
        for day, hour in ((1, 0), (15, 12), (28, 23)):
            now = datetime(2025, month, day, hour, tzinfo=UTC)
            # Then it is the month before the current UTC month
            expected = BillingPeriod(2025, month - 1) if month > 1 else BillingPeriod(2024, 12)
            assert last_complete_period(now) == expected


def test_last_complete_period_rejects_naive_datetimes() -> None:
    # Given a datetime without a timezone, When asked, Then ValueError: local time is ambiguous
    with pytest.raises(ValueError, match="timezone-aware"):
        last_complete_period(datetime(2025, 3, 1, 12))


def test_local_midnight_of_the_first_is_still_the_previous_month_in_utc() -> None:
    # Given 1 March 2025 01:00 in UTC+02:00, which is 28 February 23:00 in UTC
    now = datetime(2025, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))

    # When the last complete period is asked for
    period = last_complete_period(now)

    # Then February is not complete yet in UTC: the answer is January, not February
    assert period == BillingPeriod(2025, 1)


def test_late_evening_west_of_utc_is_already_the_next_month_in_utc() -> None:
    # Given 31 January 2025 20:00 in UTC-05:00, which is 1 February 01:00 in UTC
    now = datetime(2025, 1, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))

    # When asked, Then January is complete in UTC
    assert last_complete_period(now) == BillingPeriod(2025, 1)


def test_last_complete_period_across_new_year() -> None:
    assert last_complete_period(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == BillingPeriod(2025, 12)
    assert last_complete_period(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)) == BillingPeriod(2025, 11)


# --- period_range ---------------------------------------------------------------------------------


def test_period_range_is_inclusive_and_contiguous() -> None:
    # Given a range across a year boundary
    periods = period_range(BillingPeriod(2024, 11), BillingPeriod(2025, 2))

    # Then both ends are included, each month once, in order
    assert [str(p) for p in periods] == ["2024-11", "2024-12", "2025-01", "2025-02"]


def test_period_range_of_one_month() -> None:
    assert period_range(BillingPeriod(2025, 6), BillingPeriod(2025, 6)) == [BillingPeriod(2025, 6)]


def test_period_range_matches_counting_for_many_spans() -> None:
    # Given many (first, last) pairs
    periods = every_period("2020-01", "2026-12")
    for i in range(0, len(periods), 5):
        for j in range(i, len(periods), 7):
            # When ranged, Then the months between them, inclusive
            assert period_range(periods[i], periods[j]) == periods[i : j + 1]


def test_period_range_backwards_raises() -> None:
    with pytest.raises(ValueError, match=r"ends \(2025-01\) before it starts \(2025-02\)"):
        period_range(BillingPeriod(2025, 2), BillingPeriod(2025, 1))
