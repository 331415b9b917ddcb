"""Argument types shared by the subcommands: each refuses a bad value with one line naming it (exit 2)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, date, datetime

from invoice_archiver.models.period import BillingPeriod

_ACCOUNT = re.compile(r"^[0-9]{12}$")


def now() -> datetime:
    return datetime.now(UTC)


def billing_period(text: str) -> BillingPeriod:
    """argparse type for YYYY-MM, with the model's own error message; a period that has not begun is
    refused (no invoice can exist for it yet)."""
    try:
        period = BillingPeriod.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    check_begun(period)
    return period


def check_begun(period: BillingPeriod) -> None:
    current = BillingPeriod.of(now())
    if period > current:
        raise argparse.ArgumentTypeError(
            f"{period} has not begun (it is {current} now, UTC): no invoice can exist for it yet"
        )


def account_id(text: str) -> str:
    if not _ACCOUNT.match(text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a 12-digit account id")
    return text.strip()


def account_ids(text: str) -> list[str]:
    """Comma-separated 12-digit account ids, at least one."""
    values = csv(text)
    bad = [value for value in values if not _ACCOUNT.match(value)]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"not 12-digit account ids: {', '.join(bad) or repr(text)}")
    return values


def stack_name(text: str) -> str:
    """A stack name (or id): never empty, which would silently mean "no stack"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a stack name (it is empty)")
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a stack name (no spaces)")
    return text


def at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if number < low:
            raise argparse.ArgumentTypeError(f"{text} is below {low}")
        return number

    return parse


def seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]
