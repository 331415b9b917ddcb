"""From a listed summary to the message the fetcher reads: a pointer (account, invoice, period, source,
reason, listed-at), never the summary itself and never a URL; or, for a summary that cannot become one,
to the DLQ with the reason."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from invoice_archiver.constants import Metric
from invoice_archiver.dal import queue
from invoice_archiver.logic.notices import redact
from invoice_archiver.models.messages import InvoiceMessage, contains_presigned_url
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


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
    summary: dict[str, Any],
    *,
    reason: str | None = None,
    listed_at: datetime | None = None,
    role_arn: str | None = None,
) -> InvoiceMessage:
    """The pointer to a listed invoice (boto3's summary; see `pointer`)."""
    return pointer(jsonable(summary), reason=reason, listed_at=listed_at, role_arn=role_arn)


def pointer(
    clean: dict[str, Any],
    *,
    reason: str | None = None,
    listed_at: datetime | None = None,
    role_arn: str | None = None,
) -> InvoiceMessage:
    """The pointer to a listed invoice, from its JSON-safe summary (`jsonable`). A summary holding a
    pre-signed URL's markers is refused (a bearer credential must never travel or be archived); a
    customer's text that merely holds a URL is data."""
    if contains_presigned_url(clean):
        raise ValueError(
            f"invoice {clean.get('InvoiceId')} summary holds a pre-signed URL; refusing to enqueue it"
        )
    return InvoiceMessage(
        account_id=clean["AccountId"],
        invoice_id=clean["InvoiceId"],
        billing_period=str(BillingPeriod.from_api(clean["BillingPeriod"])),
        reason=reason,
        listed_at=listed_at,
        **({"role_arn": role_arn} if role_arn else {}),
    )


def quarantine_summary(
    sqs: SQSClient, dead_letter_queue_url: str, summary: dict[str, Any], error: Exception, query: str
) -> None:
    """One summary that cannot be enqueued: to the DLQ with why (redacted: never a URL), logged, counted."""
    reason = redact(f"{type(error).__name__}: {error}")[: queue.MAX_ATTRIBUTE_LENGTH]
    invoice = redact(repr(summary.get("InvoiceId")))[:200]
    metrics.add_metric(name=Metric.SUMMARIES_QUARANTINED, unit="Count", value=1)
    logger.error(
        "invoice summary cannot be enqueued; quarantined",
        extra={"invoice_id": invoice, "query": query, "reason": reason},
    )
    if dead_letter_queue_url:
        body = redact(json.dumps({"summary": jsonable(summary)}, default=str, ensure_ascii=False))
        queue.quarantine(
            sqs, dead_letter_queue_url, body, reason=reason, source_id=invoice, error_type="BadSummary"
        )
