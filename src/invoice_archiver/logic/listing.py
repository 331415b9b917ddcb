"""The lister's work: run the planned queries and fan out, as one SQS message each, the invoices that
need the fetcher: new, changed, not yet ARCHIVED, due for a revisit, or with an unsent event.

What "changed" means is decided against the ledger (`LedgerView`); without one every listed invoice is
enqueued, as a full re-check would. Each query runs with its source's credentials; a source that cannot
be read (its role cannot be assumed, or the API denies it) fails alone, with its reason. Given
`time_left`, a listing stops between pages when its invocation nears its end and says where to resume
(`ListingResult.resume_at`): the query and the NextToken of the page after the last one it enqueued.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from invoice_archiver.constants import Metric
from invoice_archiver.dal import invoicing as invoicing_api
from invoice_archiver.dal import queue
from invoice_archiver.dal.sources import SourceUnavailable
from invoice_archiver.logic.changes import Reason, fingerprint, why_enqueue
from invoice_archiver.logic.invoice_messages import jsonable, pointer, quarantine_summary
from invoice_archiver.logic.ledger_view import LedgerView
from invoice_archiver.logic.notices import redact
from invoice_archiver.logic.planning import SummaryQuery
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.source import Source
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_invoicing import InvoicingClient
    from mypy_boto3_sqs import SQSClient

# The Invoicing client for a role (None: the function's own credentials).
InvoicingFor = Callable[[str | None], "InvoicingClient"]
Page = tuple[list[dict[str, Any]], str | None]
# Errors that say "these credentials may not read this": the source fails, the others go on.
DENIED = frozenset(
    {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "ExpiredTokenException"}
)


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
    # Invoices of accounts that are not sources of the run (not enqueued; SourcesRefused).
    refused: int = 0
    # Sources that could not be read, by account, with why (their queries were skipped).
    failed_sources: dict[str, str] = field(default_factory=dict)
    # Queries finished, or skipped for a source that failed (a continuation resumes at the next one).
    queries_done: int = 0
    # Where to resume when the listing stopped for time: (query index, NextToken); None when done.
    resume_at: tuple[int, str | None] | None = None

    @property
    def unchanged(self) -> int:
        return self.invoices_listed - sum(self.reasons.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "invoices_listed": self.invoices_listed,
            "messages_sent": self.messages_sent,
            "quarantined": self.quarantined,
            "refused": self.refused,
            "unchanged": self.unchanged,
            "reasons": dict(sorted(self.reasons.items())),
            "ledger_queries": self.ledger_queries,
            "ledger_read_units": self.ledger_read_units,
            "ledger_seconds": round(self.ledger_seconds, 3),
            "periods": self.periods,
            "accounts": self.accounts,
            **({"failed_sources": dict(sorted(self.failed_sources.items()))} if self.failed_sources else {}),
        }


class ListingObserver:
    """Hooks for a caller that follows the listing (the CLI's backfill); each does nothing here."""

    def listed(self, message: InvoiceMessage, reason: str | None) -> None:
        """One invoice listed (the first time in this run), with why it is enqueued (None: unchanged)."""

    def before_send(self, messages: list[InvoiceMessage]) -> None:
        """A batch of messages is about to be sent."""

    def query_done(self, query: SummaryQuery) -> None:
        """A query's last page is done."""


def run_listing(
    queries: Sequence[SummaryQuery],
    *,
    invoicing_for: InvoicingFor,
    sqs: SQSClient,
    queue_url: str,
    ledger: LedgerView | None = None,
    now: datetime | None = None,
    recheck: bool = False,
    dead_letter_queue_url: str = "",
    start: tuple[int, str | None] = (0, None),
    skip_sources: Sequence[str] = (),
    time_left: Callable[[], float] | None = None,
    reserve_seconds: float = 0.0,
    observer: ListingObserver | None = None,
    allowed: Callable[[Source], bool] | None = None,
    rearchive: bool = False,
) -> ListingResult:
    """Page through the queries from `start` (query index, NextToken), and send one message per
    invoice that needs the fetcher, ten to a SendMessageBatch call.

    ledger: compare each summary with the ledger (None: enqueue every listed invoice).
    now: the run's time (the scheduled event's), against which revisits fall due; default: now.
    recheck: enqueue every listed invoice, ARCHIVED ones as a re-check (fresh GetInvoicePDF).
    rearchive: enqueue every listed invoice, ARCHIVED ones to be archived again (Reason.REARCHIVE).
    dead_letter_queue_url: where a summary that cannot become a message goes, with its reason; it is
    counted (SummariesQuarantined) and never stops the listing of the others.
    skip_sources: accounts that already failed in this run (an earlier piece): their queries are skipped.
    time_left, reserve_seconds: before each page, if fewer seconds than the reserve are left, stop with
    `resume_at` set; every message of the pages done is sent first.
    allowed: whether an invoice's source (its account, and the role it was listed through) is one of the
    run's sources; an invoice of any other account is not enqueued, but logged and counted
    (SourcesRefused). None: every listed invoice is enqueued.
    """
    now = now or datetime.now(UTC)
    observer = observer or ListingObserver()
    result = ListingResult(queries=len(queries))
    result.periods = sorted({str(q.billing_period) for q in queries if q.billing_period})
    result.accounts = sorted({q.account_id for q in queries if q.account_id})
    failed_roles: dict[str, str] = {}
    skipped = set(skip_sources)
    seen: set[tuple[str, str]] = set()
    pending: list[InvoiceMessage] = []

    def flush() -> None:
        if pending:
            observer.before_send(list(pending))
            result.messages_sent += queue.send_batch(sqs, queue_url, [m.body() for m in pending])
            pending.clear()

    def out_of_time() -> bool:
        return time_left is not None and time_left() < reserve_seconds

    index, token = start
    while index < len(queries):
        query = queries[index]
        if query.account_id in skipped or query.account_id in result.failed_sources:
            index, token, result.queries_done = index + 1, None, result.queries_done + 1
            continue
        if query.role_arn in failed_roles:
            _fail_source(result, query, failed_roles[query.role_arn])
            index, token, result.queries_done = index + 1, None, result.queries_done + 1
            continue
        found = enqueued = 0
        cut: str | None = None  # the NextToken of the page the query stopped before, for time
        try:
            pages = invoicing_api.iter_pages(invoicing_for(query.role_arn), query.request(), token)
            for summaries, next_token in _until(pages, out_of_time):
                cut = next_token
                for summary in summaries:
                    found += 1
                    clean = jsonable(summary)
                    message = _message(clean, now, query, sqs, dead_letter_queue_url, result)
                    if message is None or (message.account_id, message.invoice_id) in seen:
                        continue
                    if allowed is not None and not allowed(message.source):
                        _refuse(result, message, query)
                        continue
                    seen.add((message.account_id, message.invoice_id))
                    result.listed_per_period[f"{message.account_id}#{message.billing_period}"] += 1
                    reason = _reason(
                        message, fingerprint(clean), ledger, now, recheck, rearchive, query.reason
                    )
                    observer.listed(message, None if reason is None else str(reason))
                    if reason is None:
                        continue
                    result.reasons[reason] += 1
                    enqueued += 1
                    pending.append(message.model_copy(update={"reason": str(reason)}))
                    if len(pending) == queue.BATCH_SIZE:
                        flush()
        except SourceUnavailable as exc:
            cut = None
            failed_roles[exc.role_arn] = str(exc)
            _fail_source(result, query, str(exc))
        except ClientError as exc:
            if _error_code(exc) not in DENIED:
                raise
            cut = None
            _denied(result, query, exc)
        result.invoices_listed += found
        logger.info(
            "listed invoices", extra={"query": query.describe(), "invoices": found, "enqueued": enqueued}
        )
        if cut is not None:  # stopped for time before this page
            result.resume_at = (index, cut)
            break
        result.queries_done += 1
        observer.query_done(query)
        index, token = index + 1, None
        if index < len(queries) and out_of_time():
            result.resume_at = (index, None)
            break
    flush()
    if ledger is not None:
        result.ledger_queries, result.ledger_read_units = ledger.queries, ledger.read_units
        result.ledger_seconds = ledger.seconds
    metrics.add_metric(name=Metric.INVOICES_LISTED, unit="Count", value=result.invoices_listed)
    metrics.add_metric(name=Metric.INVOICES_ENQUEUED, unit="Count", value=sum(result.reasons.values()))
    return result


def _until(pages: Iterator[Page], out_of_time: Callable[[], bool]) -> Iterator[Page]:
    """The pages, each with the NextToken after it; when out of time, stops before the next page (the
    last token yielded is then where the query resumes)."""
    for summaries, token in pages:
        yield summaries, token
        if token is not None and out_of_time():
            return


def _message(
    summary: dict[str, Any],
    now: datetime,
    query: SummaryQuery,
    sqs: SQSClient,
    dead_letter_queue_url: str,
    result: ListingResult,
) -> InvoiceMessage | None:
    try:
        return pointer(summary, listed_at=now, role_arn=query.role_arn)
    except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        quarantine_summary(sqs, dead_letter_queue_url, summary, exc, query.describe())
        result.quarantined += 1
        return None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _denied(result: ListingResult, query: SummaryQuery, exc: ClientError) -> None:
    error = exc.response.get("Error", {})
    reason = redact(f"{error.get('Code', '')}: {error.get('Message', '')}")
    if query.account_id is None:
        # An invoice id looked for with every set of credentials: this one may not see it.
        logger.info("invoice not readable with these credentials", extra={"query": query.describe()})
        return
    _fail_source(result, query, reason)


def _fail_source(result: ListingResult, query: SummaryQuery, reason: str) -> None:
    if query.account_id is None or query.account_id in result.failed_sources:
        return
    result.failed_sources[query.account_id] = reason
    logger.error(
        "source cannot be read; its other queries are skipped",
        extra={"account_id": query.account_id, "role_arn": query.role_arn, "reason": reason},
    )


def _reason(
    message: InvoiceMessage,
    listed: str,
    ledger: LedgerView | None,
    now: datetime,
    recheck: bool,
    rearchive: bool = False,
    given: str | None = None,
) -> Reason | None:
    """Why to enqueue the invoice; `listed` is the fingerprint of the summary as listed."""
    if ledger is None:
        return Reason.REARCHIVE if rearchive else Reason.RECHECK if recheck else Reason.NEW
    reason = why_enqueue(listed, ledger.record(message), now, recheck=recheck, rearchive=rearchive)
    return Reason(given) if given is not None and reason is not None else reason


def _refuse(result: ListingResult, message: InvoiceMessage, query: SummaryQuery) -> None:
    """An invoice of an account that is not a source of this run (listed through credentials that can
    read more than the configured accounts): not enqueued, said and counted."""
    result.refused += 1
    metrics.add_metric(name=Metric.SOURCES_REFUSED, unit="Count", value=1)
    logger.warning(
        "listed an invoice of an account that is not a configured or discovered source; not enqueued",
        extra={"account_id": message.account_id, "role_arn": query.role_arn, "query": query.describe()},
    )
