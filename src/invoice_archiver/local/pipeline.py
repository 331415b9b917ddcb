"""One pass of the whole pipeline in this process: the real lister, then the real fetcher fed by an
event-source-mapping emulator, then a report read back from the ledger (the source of truth).

The handlers are imported when a pass runs, not with this module: importing them checks the loaded SDK
against what they call, which reads the AWS configuration; `invoice-archiver --help` must not.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from invoice_archiver.config import Settings
from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import invoices
from invoice_archiver.dal.ledger.states import Status
from invoice_archiver.local.api_counters import COUNTERS, ApiCounters
from invoice_archiver.local.event_source import DrainStats, EventSourceMapping, to_record
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.models.period import BillingPeriod


class Tracker(Protocol):
    """What a pass reports its progress to (the CLI's progress bar; nothing in tests)."""

    def set_total(self, total: int) -> None: ...

    def advance(self, amount: int = 1) -> None: ...

    def note(self, text: str) -> None: ...


# A fetcher invocation whose records were all retried publishes no metric, and Powertools warns about
# it on stderr. In AWS that warning goes to CloudWatch Logs; on a terminal it is noise.
warnings.filterwarnings("ignore", message="No application metrics to publish")


@dataclass
class PassReport:
    listed: int = 0
    archived: int = 0
    skipped: int = 0
    failed: int = 0
    unresolved: int = 0
    quarantined: int = 0
    documents: int = 0
    bytes: int = 0
    seconds: float = 0.0
    periods: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    drain: DrainStats | None = None
    api: ApiCounters = field(default_factory=ApiCounters)
    nothing_listed_because: str = ""
    failed_sources: dict[str, str] = field(default_factory=dict)  # account -> why it cannot be read

    @property
    def invoices_per_second(self) -> float:
        return self.archived / self.seconds if self.seconds else 0.0

    @property
    def clean(self) -> bool:
        return self.failed == 0 and self.unresolved == 0 and self.quarantined == 0 and not self.failed_sources


def scheduled_event(now: datetime) -> dict[str, Any]:
    """The event an EventBridge schedule rule delivers to the lister."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/invoice-archiver-schedule"],
        "detail": {},
    }


def _invoke_fetcher(event: dict[str, Any]) -> dict[str, Any]:
    from invoice_archiver.handlers import fetcher

    response: dict[str, Any] = fetcher.handler(event, LocalContext("invoice-archiver-fetcher"))
    return response


def invoke_lister(event: dict[str, Any], timeout_seconds: int = 300) -> dict[str, Any]:
    """The real lister handler, in this process, with fresh settings from the environment."""
    from invoice_archiver.handlers import environment, lister

    environment.reset()
    context = LocalContext("invoice-archiver-lister", timeout_seconds=timeout_seconds)
    response: dict[str, Any] = lister.handler(event, context)
    return response


def _dlq_depth(url: str) -> int:
    if not url:
        return 0
    attributes = clients.sqs().get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def run_pass(
    event: dict[str, Any],
    settings: Settings,
    *,
    workers: int = 4,
    tracker: Tracker | None = None,
    retry_delay: int = 2,
) -> PassReport:
    """List, fan out, fetch until the queue is empty; then count what happened from the ledger."""
    from invoice_archiver.handlers import fetcher

    fetcher.context.cache_clear()
    counters = COUNTERS
    before = counters.snapshot()
    started_at = datetime.now(UTC)
    started = time.monotonic()
    dlq_before = _dlq_depth(settings.dead_letter_queue_url)

    listing = drain_listing(invoke_lister(event), settings.listing_queue_url)
    # Incremental runs enqueue only what is new, changed or due: the fetcher has that many to do.
    enqueued = int(listing.get("messages_sent", listing["invoices_listed"]))
    drain = drain_queue(settings.invoice_queue_url, workers, tracker, enqueued, retry_delay=retry_delay)

    report = PassReport(
        listed=int(listing["invoices_listed"]),
        seconds=time.monotonic() - started,
        periods=list(listing["periods"]),
        accounts=list(listing["accounts"]),
        quarantined=_dlq_depth(settings.dead_letter_queue_url) - dlq_before,
        drain=drain,
        api=counters.since(before),
        failed_sources=dict(listing.get("failed_sources", {})),
    )
    if report.listed == 0:
        roles = event.get("receiver_roles") or settings.receiver_roles
        report.nothing_listed_because = why_nothing_listed(report.periods, report.accounts, roles, started_at)
    _count_from_ledger(report, settings, started_at)
    return report


# How long a continuation the lister sent may take to become visible (a redelivery: the queue's timeout).
CONTINUATION_WAIT_SECONDS = 60


def drain_listing(
    response: dict[str, Any],
    listing_queue_url: str,
    *,
    timeout_seconds: int = 300,
    on_piece: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """While the lister says its listing continues, hand it the continuation from the listing queue, one
    record per invocation as the stack's event source mapping does; the last piece's response.
    `on_piece` sees each later piece's response."""
    if not response.get("continued"):
        return response
    sqs = clients.sqs()
    arn = sqs.get_queue_attributes(QueueUrl=listing_queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    waiting_since = time.monotonic()
    while response.get("continued"):
        messages = sqs.receive_message(
            QueueUrl=listing_queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            if time.monotonic() - waiting_since > CONTINUATION_WAIT_SECONDS:
                raise RuntimeError(f"the listing continues, but {listing_queue_url} holds no continuation")
            continue
        waiting_since = time.monotonic()
        record = to_record(messages[0], arn, "us-east-1")
        response = invoke_lister({"Records": [record]}, timeout_seconds)
        sqs.delete_message(QueueUrl=listing_queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        if on_piece is not None:
            on_piece(response)
    return response


def drain_queue(
    queue_url: str, workers: int, tracker: Tracker | None, expected: int, *, retry_delay: int = 2
) -> DrainStats:
    """Feed the real fetcher from the queue until it is empty, advancing `tracker` per invoice done.
    A failed record is retried after `retry_delay` seconds, doubling per receive (0: at once)."""
    from invoice_archiver.handlers import environment, fetcher

    environment.reset()
    fetcher.context.cache_clear()
    mapping = EventSourceMapping(
        clients.sqs(), queue_url, _invoke_fetcher, workers=workers, retry_delay=retry_delay
    )
    if tracker is not None:
        tracker.set_total(expected)

        def on_batch(records: int, failed: int) -> None:
            tracker.advance(records - failed)
            if failed:
                tracker.note(f"{failed} retried")

        mapping.on_batch = on_batch
    return mapping.drain()


def why_nothing_listed(periods: list[str], accounts: list[str], roles: Any, now: datetime) -> str:
    """A run that lists nothing says why: a month not over yet, or no invoices for these accounts."""
    current = BillingPeriod.of(now)
    open_periods = [p for p in periods if BillingPeriod.parse(p) >= current]
    if open_periods:
        return (
            f"{', '.join(open_periods)} has not ended yet (today is {now:%Y-%m-%d} UTC); AWS issues a "
            "month's invoices after the month ends, so list a complete month"
        )
    roles_text = ", ".join(roles) if roles else "any"
    return (
        f"the Invoicing API has no invoices for accounts {', '.join(accounts) or '(none)'} "
        f"(receiver roles: {roles_text}) in {', '.join(periods) or 'the requested range'}; check "
        "ACCOUNT_IDS and RECEIVER_ROLES (`invoice-archiver sandbox` prints the ACCOUNT_IDS its dataset holds)"
    )


def _count_from_ledger(report: PassReport, settings: Settings, started_at: datetime) -> None:
    periods: list[BillingPeriod | None] = [BillingPeriod.parse(p) for p in report.periods] or [None]
    seen = 0
    for account in report.accounts:
        for period in periods:
            for record in invoices.query_period(clients.dynamodb(), settings.ledger_table, account, period):
                seen += 1
                if record.status is Status.ARCHIVED:
                    if record.archived_at is not None and record.archived_at >= started_at:
                        report.archived += 1
                        report.documents += record.document_count
                        report.bytes += record.total_bytes
                    else:
                        report.skipped += 1
                elif record.status is Status.FAILED:
                    report.failed += 1
                    report.failures.append((record.invoice_id, record.last_error))
                else:
                    report.unresolved += 1
                    report.failures.append((record.invoice_id, record.last_error or record.status.value))
    # Invoices listed but never claimed (e.g. quarantined before the ledger saw them) are unresolved too.
    report.unresolved += max(0, report.listed - seen)
