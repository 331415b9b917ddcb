"""The SQS message the lister sends and the fetcher reads: one invoice, never a pre-signed URL.

A message names its source (`role_arn`: the payer role the lister read it through, None for the
function's own credentials), never credentials: the fetcher assumes the role itself, and only a role
that SOURCE_ROLE_ARNS configures.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.source import ROLE_ARN, Source

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
    # The role the invoice is read through (models.source.ROLE_ARN); absent in messages from before
    # several payers, and for ACCOUNT_IDS: None, the function's own credentials.
    role_arn: str | None = Field(default=None, max_length=2048)

    @field_validator("invoice_id")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ValueError("invoice id holds control characters")
        return value

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str | None) -> str | None:
        # fullmatch: ROLE_ARN's `$` alone would also accept a trailing newline.
        if value is not None and not ROLE_ARN.fullmatch(value):
            raise ValueError("not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)")
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

    @property
    def source(self) -> Source:
        """The account and the role to read this invoice through (None: the function's own)."""
        return Source(self.account_id, self.role_arn)


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
