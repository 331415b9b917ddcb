"""The lister's work: run the planned queries and fan each invoice out as one SQS message."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from invoice_archiver.config import Settings
from invoice_archiver.constants import Metric
from invoice_archiver.dal import invoicing as invoicing_api
from invoice_archiver.dal import queue
from invoice_archiver.logic.planning import SummaryQuery, plan_request, plan_scheduled
from invoice_archiver.models.messages import InvoiceMessage, contains_url
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.requests import ListRequest, ScheduledEvent
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_invoicing import InvoicingClient
    from mypy_boto3_sqs import SQSClient


@dataclass
class ListingResult:
    queries: int = 0
    invoices_listed: int = 0
    messages_sent: int = 0
    periods: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "invoices_listed": self.invoices_listed,
            "messages_sent": self.messages_sent,
            "periods": self.periods,
            "accounts": self.accounts,
        }


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


def to_message(summary: dict[str, Any]) -> InvoiceMessage:
    clean = jsonable(summary)
    if contains_url(clean):
        raise ValueError(f"invoice {clean.get('InvoiceId')} summary holds a URL; refusing to enqueue it")
    return InvoiceMessage(
        account_id=clean["AccountId"],
        invoice_id=clean["InvoiceId"],
        billing_period=str(BillingPeriod.from_api(clean["BillingPeriod"])),
        summary=clean,
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
) -> ListingResult:
    """Page through every query and send one message per invoice, ten to a SendMessageBatch call."""
    result = ListingResult(queries=len(queries))
    result.periods = sorted({str(q.billing_period) for q in queries if q.billing_period})
    result.accounts = sorted({q.account_id for q in queries if q.account_id})
    pending: list[str] = []

    def flush() -> None:
        if pending:
            result.messages_sent += queue.send_batch(sqs, queue_url, pending)
            pending.clear()

    for query in queries:
        found = 0
        for summary in invoicing_api.iter_summaries(invoicing, query.request()):
            pending.append(to_message(summary).model_dump_json())
            found += 1
            if len(pending) == queue.BATCH_SIZE:
                flush()
        result.invoices_listed += found
        logger.info("listed invoices", extra={"query": query.describe(), "invoices": found})
    flush()
    metrics.add_metric(name=Metric.INVOICES_LISTED, unit="Count", value=result.invoices_listed)
    return result
