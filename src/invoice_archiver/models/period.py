"""A billing period: one calendar month, as the Invoicing API's BillingPeriod {Month, Year}."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class BillingPeriod:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 2000 <= self.year <= 2999:
            raise ValueError(f"not a billing period: {self.year:04d}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> BillingPeriod:
        match = _PATTERN.match(text.strip())
        if not match:
            raise ValueError(f"billing period {text!r} is not in YYYY-MM form")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, moment: datetime | date) -> BillingPeriod:
        return cls(moment.year, moment.month)

    @classmethod
    def from_api(cls, value: dict[str, Any]) -> BillingPeriod:
        return cls(int(value["Year"]), int(value["Month"]))

    def to_api(self) -> dict[str, int]:
        return {"Month": self.month, "Year": self.year}

    def shift(self, months: int) -> BillingPeriod:
        index = self.year * 12 + (self.month - 1) + months
        return BillingPeriod(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def last_complete_period(now: datetime) -> BillingPeriod:
    """The month before the one `now` falls in, in UTC: the newest period AWS has closed."""
    if now.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return BillingPeriod.of(now.astimezone(UTC)).shift(-1)


def period_range(first: BillingPeriod, last: BillingPeriod) -> list[BillingPeriod]:
    if last < first:
        raise ValueError(f"period range ends ({last}) before it starts ({first})")
    periods = [first]
    while periods[-1] < last:
        periods.append(periods[-1].shift(1))
    return periods
