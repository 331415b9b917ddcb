"""The lister's work: run the planned queries and fan out, as one SQS message each, the invoices that
need the fetcher: new, changed, not yet ARCHIVED, due for a revisit, or with an unsent event.

What "changed" means is decided against the ledger, read with one Query per account and billing
period (the first time a summary of that period is listed; see `LedgerView`). Without a ledger view
every listed invoice is enqueued, as a full re-check would.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from invoice_archiver.config import Settings
from invoice_archiver.constants import Metric
from invoice_archiver.dal import invoicing as invoicing_api
from invoice_archiver.dal import queue, tracking
from invoice_archiver.logic.changes import Reason, fingerprint, why_enqueue
from invoice_archiver.logic.notices import redact
from invoice_archiver.logic.planning import SummaryQuery, plan_request, plan_scheduled
from invoice_archiver.models.messages import InvoiceMessage, contains_url
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.requests import ListRequest, ScheduledEvent
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_invoicing import InvoicingClient
    from mypy_boto3_sqs import SQSClient


@dataclass
class ListingResult:
    queries: int = 0
    invoices_listed: int = 0
    messages_sent: int = 0
    periods: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    # Why each enqueued invoice was enqueued (logic.changes.Reason values); the rest were unchanged.
    reasons: Counter[str] = field(default_factory=Counter)
    ledger_queries: int = 0
    ledger_read_units: float = 0.0
    ledger_seconds: float = 0.0
    # Invoices listed per "<account>#<YYYY-MM>" (the missing-invoice check reads it).
    listed_per_period: Counter[str] = field(default_factory=Counter)
    # Summaries that could not become a message (quarantined to the DLQ with the reason).
    quarantined: int = 0

    @property
    def unchanged(self) -> int:
        return self.invoices_listed - sum(self.reasons.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "invoices_listed": self.invoices_listed,
            "messages_sent": self.messages_sent,
            "quarantined": self.quarantined,
            "unchanged": self.unchanged,
            "reasons": dict(sorted(self.reasons.items())),
            "ledger_queries": self.ledger_queries,
            "ledger_read_units": self.ledger_read_units,
            "ledger_seconds": round(self.ledger_seconds, 3),
            "periods": self.periods,
            "accounts": self.accounts,
        }


class LedgerView:
    """The ledger as the lister needs it: one eventually consistent Query per account and period,
    made the first time a summary of that account and period is listed, then kept for the run."""

    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._periods: dict[tuple[str, str], tracking.PeriodView] = {}
        self.seconds = 0.0

    def item(self, message: InvoiceMessage) -> dict[str, Any] | None:
        place = (message.account_id, message.billing_period)
        view = self._periods.get(place)
        if view is None:
            started = time.monotonic()
            view = tracking.read_period(self._dynamodb, self._table, message.account_id, message.period)
            self.seconds += time.monotonic() - started
            self._periods[place] = view
        return view.items.get(message.invoice_id)

    @property
    def queries(self) -> int:
        return len(self._periods)

    @property
    def read_units(self) -> float:
        return sum(view.read_units for view in self._periods.values())


def jsonable(value: Any) -> Any:
    """A boto3 response as plain JSON: timezone-aware ISO 8601 datetimes, Decimals as strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def to_message(
    summary: dict[str, Any], *, reason: str | None = None, listed_at: datetime | None = None
) -> InvoiceMessage:
    clean = jsonable(summary)
    if contains_url(clean):
        raise ValueError(f"invoice {clean.get('InvoiceId')} summary holds a URL; refusing to enqueue it")
    return InvoiceMessage(
        account_id=clean["AccountId"],
        invoice_id=clean["InvoiceId"],
        billing_period=str(BillingPeriod.from_api(clean["BillingPeriod"])),
        summary=clean,
        reason=reason,
        listed_at=listed_at,
    )


def plan(
    request: ScheduledEvent | ListRequest, settings: Settings, default_account: Callable[[], str]
) -> list[SummaryQuery]:
    accounts: Sequence[str] = settings.account_ids or (default_account(),)
    if isinstance(request, ScheduledEvent):
        return plan_scheduled(request.time, accounts, settings.receiver_roles, settings.lookback_periods)
    return plan_request(request, accounts, settings.receiver_roles)


def run_listing(
    queries: Sequence[SummaryQuery],
    *,
    invoicing: InvoicingClient,
    sqs: SQSClient,
    queue_url: str,
    ledger: LedgerView | None = None,
    now: datetime | None = None,
    recheck: bool = False,
    dead_letter_queue_url: str = "",
) -> ListingResult:
    """Page through every query, query by query, and send one message per invoice that needs the
    fetcher, ten to a SendMessageBatch call.

    ledger: compare each summary with the ledger (None: enqueue every listed invoice).
    now: the run's time (the scheduled event's), against which revisits fall due; default: now.
    recheck: enqueue every listed invoice, ARCHIVED ones as a re-check (fresh GetInvoicePDF).
    dead_letter_queue_url: where a summary that cannot become a message goes, with its reason; it is
    counted (SummariesQuarantined) and never stops the listing of the others.
    """
    now = now or datetime.now(UTC)
    result = ListingResult(queries=len(queries))
    result.periods = sorted({str(q.billing_period) for q in queries if q.billing_period})
    result.accounts = sorted({q.account_id for q in queries if q.account_id})
    pending: list[str] = []

    def flush() -> None:
        if pending:
            result.messages_sent += queue.send_batch(sqs, queue_url, pending)
            pending.clear()

    for query in queries:
        found = enqueued = 0
        for summary in invoicing_api.iter_summaries(invoicing, query.request()):
            found += 1
            try:
                message = to_message(summary, listed_at=now)
            except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
                _quarantine(sqs, dead_letter_queue_url, summary, exc, query)
                result.quarantined += 1
                continue
            result.listed_per_period[f"{message.account_id}#{message.billing_period}"] += 1
            reason = _reason(message, ledger, now, recheck)
            if reason is None:
                continue
            result.reasons[reason] += 1
            enqueued += 1
            pending.append(message.model_copy(update={"reason": str(reason)}).model_dump_json())
            if len(pending) == queue.BATCH_SIZE:
                flush()
        result.invoices_listed += found
        logger.info(
            "listed invoices", extra={"query": query.describe(), "invoices": found, "enqueued": enqueued}
        )
    flush()
    if ledger is not None:
        result.ledger_queries, result.ledger_read_units = ledger.queries, ledger.read_units
        result.ledger_seconds = ledger.seconds
    metrics.add_metric(name=Metric.INVOICES_LISTED, unit="Count", value=result.invoices_listed)
    metrics.add_metric(name=Metric.INVOICES_ENQUEUED, unit="Count", value=sum(result.reasons.values()))
    return result


def _quarantine(
    sqs: SQSClient, dead_letter_queue_url: str, summary: dict[str, Any], error: Exception, query: SummaryQuery
) -> None:
    """One summary that cannot be enqueued: to the DLQ with why (redacted: never a URL), logged, counted."""
    reason = redact(f"{type(error).__name__}: {error}")[: queue.MAX_ATTRIBUTE_LENGTH]
    invoice = redact(repr(summary.get("InvoiceId")))[:200]
    metrics.add_metric(name=Metric.SUMMARIES_QUARANTINED, unit="Count", value=1)
    logger.error(
        "invoice summary cannot be enqueued; quarantined",
        extra={"invoice_id": invoice, "query": query.describe(), "reason": reason},
    )
    if dead_letter_queue_url:
        body = redact(json.dumps({"summary": jsonable(summary)}, default=str, ensure_ascii=False))
        queue.quarantine(
            sqs, dead_letter_queue_url, body, reason=reason, source_id=invoice, error_type="BadSummary"
        )


def _reason(
    message: InvoiceMessage, ledger: LedgerView | None, now: datetime, recheck: bool
) -> Reason | None:
    if ledger is None:
        return Reason.RECHECK if recheck else Reason.NEW
    return why_enqueue(fingerprint(message.summary), ledger.item(message), now, recheck=recheck)
