"""Where a listing that outgrew its invocation stands: the message the lister sends itself.

A listing runs its planned queries in order. When its invocation nears its timeout, it sends this
to the listing queue, which the lister consumes: the original request, the run's `now`, the sources it
planned with (discovered invoice units included), the query to resume and the NextToken that continues
it, and the totals so far, so the last piece reports (and checks missing invoices) for the whole run.
It never holds credentials or URLs: a NextToken is an opaque cursor of the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from invoice_archiver.models.source import Source

KIND: Final = "invoice-archiver/listing-continuation"


class ListingTotals(BaseModel):
    """What the pieces of one listing have done so far (summed piece by piece)."""

    model_config = ConfigDict(extra="forbid")

    queries_done: int = 0
    invoices_listed: int = 0
    messages_sent: int = 0
    quarantined: int = 0
    refused: int = 0
    reasons: dict[str, int] = Field(default_factory=dict)
    listed_per_period: dict[str, int] = Field(default_factory=dict)
    failed_sources: dict[str, str] = Field(default_factory=dict)  # account -> why


class ListingContinuation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["invoice-archiver/listing-continuation"] = KIND
    version: Literal[1] = 1
    request: dict[str, Any]
    now: datetime
    sources: tuple[tuple[str, str | None], ...]
    plan: str = Field(pattern=r"^[0-9a-f]{64}$")  # SHA-256 of the planned queries
    query_index: int = Field(ge=0)
    next_token: str | None = None
    piece: int = Field(ge=1)
    totals: ListingTotals

    @field_validator("now")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: tuple[tuple[str, str | None], ...]) -> tuple[tuple[str, str | None], ...]:
        for account, role in value:
            Source(account, role)  # raises ValueError on a malformed account or role
        return value

    def planned_sources(self) -> tuple[Source, ...]:
        return tuple(Source(account, role) for account, role in self.sources)


def is_continuation(body: object) -> bool:
    return isinstance(body, dict) and body.get("kind") == KIND
