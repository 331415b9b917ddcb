"""What the lister is asked to do: a scheduled tick, or an explicit re-run / backfill."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from invoice_archiver.constants import RECEIVER_ROLES
from invoice_archiver.models.period import BillingPeriod

_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")


class ScheduledEvent(BaseModel):
    """The part of an EventBridge "Scheduled Event" the lister uses."""

    model_config = ConfigDict(populate_by_name=True)

    source: str
    detail_type: str = Field(alias="detail-type")
    time: datetime

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class ListRequest(BaseModel):
    """An explicit request: any of billing periods, a period range, an issue-date range or invoice ids.

    `accounts` and `receiver_roles` override the configured ones for this run only. Without `recheck`
    only what is new, changed, not yet archived or due is enqueued (as on a schedule); with it every
    listed invoice is, and an archived one is re-checked: fresh GetInvoicePDF, any new document
    archived, a revision if anything changed.

    `rearchive` (with `invoice_ids` alone): every named invoice is archived again, ARCHIVED or not:
    every document is fetched; an object that still holds the same bytes is kept, a deleted one is
    created again, one replaced by different bytes is a conflict. Nothing is overwritten.

    `report_enqueued`: the response names each invoice this invocation enqueued, with why, under
    `enqueued` (`enqueued_complete` false when they did not all fit in a Lambda response), so a caller
    (the CLI's backfill) can follow each one to its end.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    billing_periods: tuple[str, ...] = ()
    from_period: str | None = None
    to_period: str | None = None
    issued_from: date | None = None
    issued_to: date | None = None
    invoice_ids: tuple[str, ...] = ()
    accounts: tuple[str, ...] | None = None
    receiver_roles: tuple[str, ...] | None = None
    recheck: bool = False
    rearchive: bool = False
    report_enqueued: bool = False

    @field_validator("billing_periods")
    @classmethod
    def _periods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            BillingPeriod.parse(text)
        return value

    @field_validator("from_period", "to_period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        if value is not None:
            BillingPeriod.parse(value)
        return value

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            bad = [a for a in value if not _ACCOUNT_ID.match(a)]
            if bad:
                raise ValueError(f"not 12-digit account ids: {', '.join(bad)}")
        return value

    @field_validator("receiver_roles")
    @classmethod
    def _roles(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            bad = [r for r in value if r not in RECEIVER_ROLES]
            if bad:
                raise ValueError(f"unknown receiver roles {', '.join(bad)}; use {', '.join(RECEIVER_ROLES)}")
        return value

    @model_validator(mode="after")
    def _something(self) -> ListRequest:
        if (self.from_period is None) != (self.to_period is None):
            raise ValueError("from_period and to_period go together")
        if (self.issued_from is None) != (self.issued_to is None):
            raise ValueError("issued_from and issued_to go together")
        if self.issued_from and self.issued_to and self.issued_to <= self.issued_from:
            raise ValueError("issued_to must be after issued_from (the end is exclusive)")
        if not (self.billing_periods or self.from_period or self.issued_from or self.invoice_ids):
            raise ValueError(
                "name billing_periods, from_period/to_period, issued_from/issued_to or invoice_ids"
            )
        if self.rearchive:
            if not self.invoice_ids or self.billing_periods or self.from_period or self.issued_from:
                raise ValueError("rearchive names invoices: give invoice_ids alone")
            if self.recheck:
                raise ValueError("rearchive or recheck, not both (a re-archive fetches every document)")
        return self


def parse_lister_event(event: dict[str, Any]) -> ScheduledEvent | ListRequest:
    """A scheduled EventBridge event, or an explicit ListRequest (raises pydantic.ValidationError)."""
    if event.get("detail-type") == "Scheduled Event":
        return ScheduledEvent.model_validate(event)
    return ListRequest.model_validate(event)
