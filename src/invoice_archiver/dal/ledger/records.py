"""The ledger's items, typed: an invoice's key and record, a source's record, a claim's outcome; the
conversions between plain values and DynamoDB's typed ones; and the one conditional write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY, SOURCE_SORT_KEY
from invoice_archiver.dal.ledger.states import Status
from invoice_archiver.models.period import BillingPeriod

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
MAX_ERROR_LENGTH: Final = 1000


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


class InvoiceRecord(BaseModel):
    """One invoice's item, as every reader sees it (attributes it does not hold take these defaults)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    account_id: str
    invoice_id: str
    billing_period: str
    status: Status = Status.NEW
    attempts: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    archived_at: datetime | None = None
    last_checked_at: datetime | None = None
    last_error: str = ""
    retryable: bool | None = None
    lease_owner: str | None = None
    lease_expires_at: int | None = None
    invoice_type: str = ""
    receiver_role: str = ""
    source_role_arn: str = ""
    summary_key: str | None = None
    latest_summary_key: str | None = None
    revision: int = 0
    checks: int = 0
    total_bytes: int = 0
    document_count: int = 0
    documents: list[dict[str, Any]] = []
    documents_no_longer_listed: list[dict[str, Any]] = []
    documents_omitted: bool = False
    summary_fingerprint: str | None = None
    issued_date: str | None = None
    next_check_at: datetime | None = None
    pending_event: dict[str, str] | None = None
    unsettled_since: datetime | None = None

    @property
    def key(self) -> LedgerKey:
        return LedgerKey(self.account_id, BillingPeriod.parse(self.billing_period), self.invoice_id)

    @property
    def latest_summary(self) -> str:
        """The key of the invoice's newest summary (a revision's, else summary.json's)."""
        return str(self.latest_summary_key or self.summary_key or "")

    def held(self, now: datetime) -> bool:
        """A worker holds a live lease on it (a re-check holds one on an ARCHIVED invoice)."""
        return (self.lease_expires_at or 0) >= int(now.timestamp())


class SourceRecord(BaseModel):
    """A source account that could not be read: its own item, beside its invoices (sk SOURCE)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    account_id: str
    status: Status
    role_arn: str = ""
    reason: str = ""
    stage: str = ""
    checked_at: datetime | None = None
    failed_since: datetime | None = None


def invoice_record(item: dict[str, Any]) -> InvoiceRecord:
    return InvoiceRecord.model_validate(item)


def source_record(item: dict[str, Any]) -> SourceRecord:
    return SourceRecord.model_validate({**item, "account_id": item[LEDGER_PARTITION_KEY]})


def is_source_item(item: dict[str, Any]) -> bool:
    return item.get(LEDGER_SORT_KEY) == SOURCE_SORT_KEY


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

    _ATTRIBUTES = {
        ":fingerprint": "summary_fingerprint",
        ":issued": "issued_date",
        ":next_check": "next_check_at",
        ":pending": "pending_event",
        ":invoice_type": "invoice_type",
        ":receiver_role": "receiver_role",
    }

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":fingerprint": self.fingerprint,
            ":issued": self.issued_date,
            ":next_check": self.next_check_at.isoformat() if self.next_check_at else None,
            ":pending": self.pending_event,
            ":invoice_type": self.invoice_type,
            ":receiver_role": self.receiver_role,
        }
        return {name: value for name, value in values.items() if value is not None}

    def set_clause(self) -> str:
        return "".join(f", {self._ATTRIBUTES[value]} = {value}" for value in self.values())

    def remove_clause(self) -> str:
        return "" if self.next_check_at is not None else ", next_check_at"


@dataclass(frozen=True)
class Claim:
    """Outcome of a claim: `claimed`, with the record as it now is or as it stopped the claim."""

    claimed: bool
    record: InvoiceRecord | None

    @property
    def status(self) -> Status:
        return self.record.status if self.record else Status.NEW

    def held(self, now: datetime) -> bool:
        return self.record is not None and self.record.held(now)


class LeaseLost(Exception):
    """Another worker holds this invoice now."""


def to_dynamo(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _SERIALIZER.serialize(value) for name, value in values.items()}


def from_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


@dataclass(frozen=True)
class Written:
    """A conditional write: `done`, or refused with the item as it was (when the request asked for it)."""

    done: bool
    item: dict[str, Any] | None = None


def conditional(write: Callable[..., Any], **request: Any) -> Written:
    """Send one conditional write (UpdateItem, DeleteItem); a failed condition is an answer, not an error."""
    try:
        response = write(**request)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
        return Written(False, from_dynamo(old) if old else None)
    attributes = response.get("Attributes")
    return Written(True, from_dynamo(attributes) if attributes else None)


@dataclass(frozen=True)
class Condition:
    """A ConditionExpression with its attribute names and values."""

    expression: str
    names: dict[str, str]
    values: dict[str, Any]


def status_condition(name: str, statuses: list[Status]) -> Condition:
    """The condition that lets a write happen from exactly these statuses: `#status IN (...)` over the
    stored ones, and `attribute_not_exists` (no item yet) for NEW."""
    stored = [status for status in statuses if status is not Status.NEW]
    values = {f":{name}{n}": status.value for n, status in enumerate(stored)}
    parts, names = [], {}
    if Status.NEW in statuses:
        parts.append("attribute_not_exists(#pk)")
        names["#pk"] = LEDGER_PARTITION_KEY
    if values:
        parts.append(f"#status IN ({', '.join(values)})")
        names["#status"] = "status"
    return Condition(" OR ".join(parts), names, values)
