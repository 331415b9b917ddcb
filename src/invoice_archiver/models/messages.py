"""The SQS message the lister sends and the fetcher reads: one invoice, never a pre-signed URL."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from invoice_archiver.models.period import BillingPeriod

_PERIOD = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


class InvoiceMessage(BaseModel):
    """Identity of one invoice plus its full summary, as ListInvoiceSummaries returned it (JSON-safe)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    account_id: str = Field(pattern=r"^[0-9]{12}$")
    invoice_id: str = Field(min_length=1, max_length=1024)
    billing_period: str = Field(pattern=_PERIOD)
    summary: dict[str, Any]
    # Why the lister enqueued it (logic.changes.Reason) and the listing's "now"; absent in messages
    # from before incremental runs, and in hand-made ones: then an ARCHIVED invoice is re-checked only
    # when its summary changed.
    reason: str | None = Field(default=None, max_length=32)
    listed_at: datetime | None = None

    @field_validator("invoice_id")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ValueError("invoice id holds control characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> InvoiceMessage:
        if self.summary.get("InvoiceId") != self.invoice_id:
            raise ValueError("summary.InvoiceId does not match invoice_id")
        if self.summary.get("AccountId") != self.account_id:
            raise ValueError("summary.AccountId does not match account_id")
        return self

    @property
    def period(self) -> BillingPeriod:
        return BillingPeriod.parse(self.billing_period)


_URL_LIKE = re.compile(r"https?://", re.IGNORECASE)


def contains_url(value: object) -> bool:
    """True if any string inside `value` looks like a URL (messages must never carry one)."""
    if isinstance(value, str):
        return bool(_URL_LIKE.search(value))
    if isinstance(value, dict):
        return any(contains_url(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_url(v) for v in value)
    return False
