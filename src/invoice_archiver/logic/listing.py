"""The lister's work: run the planned queries and fan out, as one SQS message each, the invoices that
need the fetcher: new, changed, not yet ARCHIVED, due for a revisit, or with an unsent event.

What "changed" means is decided against the ledger (`LedgerView`); without one every listed invoice is
enqueued, as a full re-check would. Each query runs with its source's credentials; a source that cannot
be read (its role cannot be assumed, or the API denies it) fails alone, with its reason. Given
`time_left`, a listing stops between pages when its invocation nears its end and says where to resume
(`ListingResult.resume_at`): the query and the NextToken of the page after the last one it enqueued.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
from invoice_archiver.logic.listing_result import ListingObserver, ListingResult
from invoice_archiver.logic.notices import redact
from invoice_archiver.logic.planning import SummaryQuery
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.source import Source
from invoice_archiver.observability import logger, metrics, tracer

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
    options = ListingOptions(
        now=now or datetime.now(UTC),
        recheck=recheck,
        rearchive=rearchive,
        dead_letter_queue_url=dead_letter_queue_url,
        skip_sources=frozenset(skip_sources),
        time_left=time_left,
        reserve_seconds=reserve_seconds,
        allowed=allowed,
    )
    listing = Listing(
        queries,
        invoicing_for=invoicing_for,
        sqs=sqs,
        queue_url=queue_url,
        ledger=ledger,
        options=options,
        observer=observer or ListingObserver(),
    )
    return listing.run(start)


@dataclass(frozen=True)
class ListingOptions:
    """How a listing decides and when it stops (see run_listing for each)."""

    now: datetime
    recheck: bool = False
    rearchive: bool = False
    dead_letter_queue_url: str = ""
    skip_sources: frozenset[str] = frozenset()
    time_left: Callable[[], float] | None = None
    reserve_seconds: float = 0.0
    allowed: Callable[[Source], bool] | None = None


class Listing:
    """One listing: query by query, page by page, each invoice that needs the fetcher into a batch of ten,
    each full batch sent; between pages, it stops when its invocation nears its end."""

    def __init__(
        self,
        queries: Sequence[SummaryQuery],
        *,
        invoicing_for: InvoicingFor,
        sqs: SQSClient,
        queue_url: str,
        ledger: LedgerView | None,
        options: ListingOptions,
        observer: ListingObserver,
    ) -> None:
        self._queries, self._invoicing_for, self._sqs, self._queue_url = (
            queries,
            invoicing_for,
            sqs,
            queue_url,
        )
        self._ledger, self._options, self._observer = ledger, options, observer
        self.result = ListingResult(queries=len(queries))
        self.result.periods = sorted({str(q.billing_period) for q in queries if q.billing_period})
        self.result.accounts = sorted({q.account_id for q in queries if q.account_id})
        self._failed_roles: dict[str, str] = {}
        self._seen: set[tuple[str, str]] = set()
        self._pending: list[InvoiceMessage] = []

    @tracer.capture_method(capture_response=False, capture_error=False)
    def run(self, start: tuple[int, str | None]) -> ListingResult:
        index, token = start
        while index < len(self._queries):
            query = self._queries[index]
            if not self._readable(query):
                index, token, self.result.queries_done = index + 1, None, self.result.queries_done + 1
                continue
            cut = self._query(query, token)
            if cut is not None:  # stopped for time before this page
                self.result.resume_at = (index, cut)
                break
            self.result.queries_done += 1
            self._observer.query_done(query)
            index, token = index + 1, None
            if index < len(self._queries) and self._out_of_time():
                self.result.resume_at = (index, None)
                break
        self._flush()
        self._close()
        return self.result

    def _readable(self, query: SummaryQuery) -> bool:
        """False for a query of a source that already failed (in this run, or an earlier piece of it)."""
        account = query.account_id
        if account in self._options.skip_sources or account in self.result.failed_sources:
            return False
        if query.role_arn in self._failed_roles:
            _fail_source(self.result, query, self._failed_roles[query.role_arn])
            return False
        return True

    def _query(self, query: SummaryQuery, token: str | None) -> str | None:
        """Every page of one query from `token`; the NextToken it stopped before for time, else None."""
        found = enqueued = 0
        cut: str | None = None
        try:
            pages = invoicing_api.iter_pages(self._invoicing_for(query.role_arn), query.request(), token)
            for summaries, next_token in _until(pages, self._out_of_time):
                cut = next_token
                found += len(summaries)
                enqueued += sum(self._summary(summary, query) for summary in summaries)
        except SourceUnavailable as exc:
            cut = None
            self._failed_roles[exc.role_arn] = str(exc)
            _fail_source(self.result, query, str(exc))
        except ClientError as exc:
            if _error_code(exc) not in DENIED:
                raise
            cut = None
            _denied(self.result, query, exc)
        self.result.invoices_listed += found
        logger.info(
            "listed invoices", extra={"query": query.describe(), "invoices": found, "enqueued": enqueued}
        )
        return cut

    def _summary(self, summary: dict[str, Any], query: SummaryQuery) -> bool:
        """One listed summary: enqueued (True), or unchanged, a duplicate, refused or quarantined."""
        options, result = self._options, self.result
        clean = jsonable(summary)
        message = _message(clean, options.now, query, self._sqs, options.dead_letter_queue_url, result)
        if message is None or (message.account_id, message.invoice_id) in self._seen:
            return False
        if options.allowed is not None and not options.allowed(message.source):
            _refuse(result, message, query)
            return False
        self._seen.add((message.account_id, message.invoice_id))
        result.listed_per_period[f"{message.account_id}#{message.billing_period}"] += 1
        reason = _reason(message, fingerprint(clean), self._ledger, options, query.reason)
        self._observer.listed(message, None if reason is None else str(reason))
        if reason is None:
            return False
        result.reasons[reason] += 1
        self._pending.append(message.model_copy(update={"reason": str(reason)}))
        if len(self._pending) == queue.BATCH_SIZE:
            self._flush()
        return True

    def _flush(self) -> None:
        if self._pending:
            self._observer.before_send(list(self._pending))
            bodies = [m.body() for m in self._pending]
            self.result.messages_sent += queue.send_batch(self._sqs, self._queue_url, bodies)
            self._pending.clear()

    def _out_of_time(self) -> bool:
        time_left = self._options.time_left
        return time_left is not None and time_left() < self._options.reserve_seconds

    def _close(self) -> None:
        result, ledger = self.result, self._ledger
        if ledger is not None:
            result.ledger_queries, result.ledger_read_units = ledger.queries, ledger.read_units
            result.ledger_seconds = ledger.seconds
        metrics.add_metric(name=Metric.INVOICES_LISTED, unit="Count", value=result.invoices_listed)
        metrics.add_metric(name=Metric.INVOICES_ENQUEUED, unit="Count", value=sum(result.reasons.values()))


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
    options: ListingOptions,
    given: str | None = None,
) -> Reason | None:
    """Why to enqueue the invoice; `listed` is the fingerprint of the summary as listed."""
    recheck, rearchive = options.recheck, options.rearchive
    if ledger is None:
        return Reason.REARCHIVE if rearchive else Reason.RECHECK if recheck else Reason.NEW
    reason = why_enqueue(listed, ledger.record(message), options.now, recheck=recheck, rearchive=rearchive)
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
