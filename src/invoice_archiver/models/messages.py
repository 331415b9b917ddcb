"""The SQS message the lister sends and the fetcher reads: a pointer to one invoice, never evidence.

A message names an invoice (account, id, billing period), the source to read it through (`role_arn`:
the payer role the lister read it through; None for the function's own credentials), why it was
enqueued and when it was listed. It carries no fact about the invoice: the fetcher reads the summary
from the Invoicing API itself, through the source's credentials, before it writes anything. More
principals can reach a queue than the function that fills it; what a message says is never archived.

Version 1 messages (sent before this rule) also carried the listed summary. They are still accepted, as
pointers: their summary is ignored, except as a hint that the lister saw a change.
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
MESSAGE_VERSION: Literal[2] = 2


class InvoiceMessage(BaseModel):
    """Which invoice to archive, through which source, and why. Identifiers only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1, 2] = MESSAGE_VERSION
    account_id: str = Field(pattern=r"^[0-9]{12}$")
    invoice_id: str = Field(min_length=1, max_length=1024)
    billing_period: str = Field(pattern=_PERIOD)
    # Why the lister enqueued it (logic.changes.Reason) and the listing's "now"; absent in hand-made
    # messages: then an ARCHIVED invoice is taken as a duplicate delivery and skipped.
    reason: str | None = Field(default=None, max_length=32)
    listed_at: datetime | None = None
    # The role the invoice is read through (models.source.ROLE_ARN); None: the function's own credentials.
    role_arn: str | None = Field(default=None, max_length=2048)
    # Version 1 only: the summary the lister listed. Never archived; see `legacy_summary`.
    summary: dict[str, Any] | None = None

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

    @field_validator("listed_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("listed_at must be timezone-aware")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> InvoiceMessage:
        if self.version == MESSAGE_VERSION:
            if self.summary is not None:
                raise ValueError("a version 2 message carries no summary: the fetcher reads it from the API")
            return self
        if self.summary is None:
            raise ValueError("a version 1 message carries its summary")
        if self.summary.get("InvoiceId") != self.invoice_id:
            raise ValueError("summary.InvoiceId does not match invoice_id")
        if self.summary.get("AccountId") != self.account_id:
            raise ValueError("summary.AccountId does not match account_id")
        return self

    def body(self) -> str:
        """The SQS message body: JSON, absent fields left out (a version 2 body has no summary key)."""
        return self.model_dump_json(exclude_none=True)

    @property
    def period(self) -> BillingPeriod:
        return BillingPeriod.parse(self.billing_period)

    @property
    def source(self) -> Source:
        """The account and the role to read this invoice through (None: the function's own)."""
        return Source(self.account_id, self.role_arn)

    @property
    def legacy_summary(self) -> dict[str, Any] | None:
        """A version 1 message's summary: a hint of what the lister saw, never a fact to archive."""
        return self.summary


# What a pre-signed URL carries (SigV4 query parameters; SigV2's Signature together with Expires).
# Customer text that merely holds a URL (a purchase-order note, an address) is data, archived as is.
_SIGV4 = re.compile(r"X-Amz-(Signature|Credential)\b", re.IGNORECASE)
_SIGV2_SIGNATURE = re.compile(r"\bSignature=", re.IGNORECASE)
_SIGV2_EXPIRES = re.compile(r"\bExpires=", re.IGNORECASE)


def contains_presigned_url(value: object) -> bool:
    """True if any string inside `value` carries a pre-signed URL's markers: `X-Amz-Signature`,
    `X-Amz-Credential`, or `Signature=` together with `Expires=` (a bearer credential must never be
    enqueued, logged or archived). A plain URL is not refused."""
    if isinstance(value, str):
        if _SIGV4.search(value):
            return True
        return bool(_SIGV2_SIGNATURE.search(value) and _SIGV2_EXPIRES.search(value))
    if isinstance(value, dict):
        return any(contains_presigned_url(k) or contains_presigned_url(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_presigned_url(v) for v in value)
    return False
