"""An invoice as the Invoicing API confirmed it: the only facts the archive is written from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.source import Source


@dataclass(frozen=True)
class VerifiedInvoice:
    """The summary ListInvoiceSummaries returned for this invoice, in this invocation, through the
    invoice's source (`logic.evidence.confirm`). JSON-safe: amounts are decimal strings, timestamps ISO
    8601 with their offset. Nothing here comes from a queue message."""

    source: Source
    invoice_id: str
    billing_period: str
    summary: dict[str, Any]

    @property
    def account_id(self) -> str:
        return self.source.account_id

    @property
    def role_arn(self) -> str | None:
        return self.source.role_arn

    @property
    def period(self) -> BillingPeriod:
        return BillingPeriod.parse(self.billing_period)
