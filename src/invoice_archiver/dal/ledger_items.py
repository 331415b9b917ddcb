"""The ledger's shared vocabulary: an invoice's key, typed values of its items and of a claim, and the
conversions between plain values and DynamoDB's typed ones. Every ledger module uses them
(invoice_archiver.dal.ledger re-exports them: callers name them from there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY
from invoice_archiver.models.period import BillingPeriod

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
MAX_ERROR_LENGTH = 1000


@dataclass(frozen=True)
class LedgerKey:
    account_id: str
    period: BillingPeriod
    invoice_id: str

    def item_key(self) -> dict[str, Any]:
        return {
            LEDGER_PARTITION_KEY: {"S": self.account_id},
            LEDGER_SORT_KEY: {"S": f"{self.period}#{self.invoice_id}"},
        }


@dataclass(frozen=True)
class Tracking:
    """What the lister compares on the next run: the summary's fingerprint, the invoice's issue date
    and its next scheduled re-check (None: no more), plus the event still to confirm as sent."""

    fingerprint: str | None = None
    issued_date: str | None = None
    next_check_at: datetime | None = None
    pending_event: dict[str, str] | None = None
    # From the confirmed summary (the claim, made before the API is asked, cannot know them).
    invoice_type: str | None = None
    receiver_role: str | None = None

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.fingerprint is not None:
            values[":fingerprint"] = self.fingerprint
        if self.issued_date is not None:
            values[":issued"] = self.issued_date
        if self.next_check_at is not None:
            values[":next_check"] = self.next_check_at.isoformat()
        if self.pending_event is not None:
            values[":pending"] = self.pending_event
        if self.invoice_type is not None:
            values[":invoice_type"] = self.invoice_type
        if self.receiver_role is not None:
            values[":receiver_role"] = self.receiver_role
        return values

    def set_clause(self) -> str:
        names = {
            ":fingerprint": "summary_fingerprint",
            ":issued": "issued_date",
            ":next_check": "next_check_at",
            ":pending": "pending_event",
            ":invoice_type": "invoice_type",
            ":receiver_role": "receiver_role",
        }
        return "".join(f", {names[value]} = {value}" for value in self.values())

    def remove_clause(self) -> str:
        return "" if self.next_check_at is not None else ", next_check_at"


@dataclass(frozen=True)
class Claim:
    """Outcome of a claim: `claimed`, or the item that stopped it (ARCHIVED, or a live lease)."""

    claimed: bool
    item: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.item.get("status", ""))

    def held(self, now: datetime) -> bool:
        """The item is leased to a worker, and the lease is live (a re-check holds one on ARCHIVED)."""
        return int(self.item.get("lease_expires_at") or 0) >= int(now.timestamp())


class LeaseLost(Exception):
    """Another worker holds this invoice now."""


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _SERIALIZER.serialize(value) for name, value in values.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def _conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
