"""Small helpers shared by the sandbox contract tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

ACCOUNT = "123456789012"


def invoicing(**config: Any) -> Any:
    """An unmodified boto3 invoicing client; retries off unless asked, so faults surface."""
    retries = config.pop("retries", {"mode": "standard", "total_max_attempts": 1})
    return boto3.client("invoicing", config=Config(retries=retries, **config))


def by_period(year: int, month: int, account: str = ACCOUNT, **extra: Any) -> dict[str, Any]:
    return {
        "Selector": {"ResourceType": "ACCOUNT_ID", "Value": account},
        "Filter": {"BillingPeriod": {"Year": year, "Month": month}, **extra},
    }


def by_interval(start: datetime, end: datetime, account: str = ACCOUNT, **extra: Any) -> dict[str, Any]:
    return {
        "Selector": {"ResourceType": "ACCOUNT_ID", "Value": account},
        "Filter": {"TimeInterval": {"StartDate": start, "EndDate": end}, **extra},
    }


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


class RawBodies:
    """Capture every raw response body a client receives (before botocore parses it)."""

    def __init__(self, client: Any) -> None:
        self.bodies: list[tuple[str, Any]] = []
        client.meta.events.register("before-parse.invoicing.*", self._record)

    def _record(self, operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        self.bodies.append((operation_model.name, json.loads(response_dict["body"])))
