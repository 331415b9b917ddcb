"""One listing from its request to its end, across as many lister invocations as it takes.

`start` plans a run: its sources (ACCOUNT_IDS, SOURCE_ROLE_ARNS, and with DISCOVER_INVOICE_UNITS each
source's invoice-unit receivers) and its queries (source x receiver role x period, or the request's
ranges). Queries run in order. When the invocation nears its end (LISTING_RESERVE_SECONDS left), the
listing stops between pages and sends a `ListingContinuation` to LISTING_QUEUE_URL; the lister consumes
that queue and `resume`s from the query and NextToken it names. Every message of the pages done is sent
before the continuation, so no page is lost; a piece that dies before sending its continuation is
redelivered and repeats its pages (at least once: the ledger absorbs a second message).

A continuation re-plans from the request, the run's `now` and the sources it carries (so discovered
invoice units stay as they were), and resumes only if the plan is the one it was cut from. The last
piece does what concerns the whole run: the missing-invoice check, the source records, SourcesFailed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from invoice_archiver.config import Settings
from invoice_archiver.constants import Metric
from invoice_archiver.dal.ledger import source_records
from invoice_archiver.logic.ledger_view import LedgerView
from invoice_archiver.logic.listing import InvoicingFor, run_listing
from invoice_archiver.logic.listing_report import EnqueuedReport
from invoice_archiver.logic.listing_result import ListingResult
from invoice_archiver.logic.missing import accounts_without_invoice
from invoice_archiver.logic.planning import SummaryQuery, plan_fingerprint, plan_request, plan_scheduled
from invoice_archiver.logic.sourcing import KnownSources, configured_sources, discover_units
from invoice_archiver.logic.unsettled import requeue_unsettled
from invoice_archiver.models.continuation import ListingContinuation, ListingTotals
from invoice_archiver.models.requests import ListRequest, ScheduledEvent, parse_lister_event
from invoice_archiver.models.source import Source
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient


class PlanSettings(Protocol):
    @property
    def receiver_roles(self) -> tuple[str, ...]: ...

    @property
    def lookback_periods(self) -> int: ...


def plan_queries(
    request: ScheduledEvent | ListRequest, sources: Sequence[Source], settings: PlanSettings
) -> list[SummaryQuery]:
    if isinstance(request, ScheduledEvent):
        return plan_scheduled(request.time, sources, settings.receiver_roles, settings.lookback_periods)
    return plan_request(request, sources, settings.receiver_roles)


@dataclass
class ListingJob:
    settings: Settings
    invoicing_for: InvoicingFor
    sqs: SQSClient
    dynamodb: DynamoDBClient
    caller_account: Callable[[], str]
    # Seconds left of this invocation (None: no limit, as in the CLI).
    time_left: Callable[[], float] | None = None

    def start(self, event: dict[str, Any]) -> dict[str, Any]:
        """A scheduled tick or an explicit request (raises pydantic.ValidationError, PlanningError)."""
        request = parse_lister_event(event)
        now = request.time if isinstance(request, ScheduledEvent) else datetime.now(UTC)
        sources = configured_sources(self.settings, self.caller_account)
        failed: dict[str, str] = {}
        if self.settings.discover_invoice_units:
            sources, failed = discover_units(sources, self.invoicing_for)
        queries = plan_queries(request, sources, self.settings)
        totals = ListingTotals(failed_sources=failed)
        self._record_failures(sources, failed, stage="discovery")
        if not isinstance(request, ScheduledEvent):
            return self._run(event, request, now, sources, queries, (0, None), 1, totals)
        # Unsettled invoices whatever their period (logic/unsettled.py), before the periods' listing.
        report, result = requeue_unsettled(
            sources,
            settings=self.settings,
            dynamodb=self.dynamodb,
            sqs=self.sqs,
            invoicing_for=self.invoicing_for,
            now=now,
            failed_accounts=failed,
            time_left=self.time_left if self.settings.listing_queue_url else None,
        )
        self._record_failures(sources, result.failed_sources, stage="listing")
        totals = _add(totals, result)
        response = self._run(event, request, now, sources, queries, (0, None), 1, totals)
        return {**response, "unsettled": report.as_dict()}

    def resume(self, continuation: ListingContinuation) -> dict[str, Any]:
        """The next piece of a listing (raises SourceRefused if the continuation names a source that is
        neither configured nor discovered: a continuation is a cursor, not an authority)."""
        request = parse_lister_event(continuation.request)
        sources = continuation.planned_sources()
        self._check_sources(sources)
        queries = plan_queries(request, sources, self.settings)
        start: tuple[int, str | None] = (continuation.query_index, continuation.next_token)
        totals = continuation.totals
        if plan_fingerprint(queries) != continuation.plan or continuation.query_index > len(queries):
            logger.warning(
                "the configuration changed since this listing started; listing its queries again from the "
                "first (what was sent already is absorbed by the ledger)",
                extra={"piece": continuation.piece},
            )
            start, totals = (0, None), ListingTotals(failed_sources=totals.failed_sources)
        return self._run(
            continuation.request,
            request,
            continuation.now,
            sources,
            queries,
            start,
            continuation.piece,
            totals,
        )

    def _run(
        self,
        event: dict[str, Any],
        request: ScheduledEvent | ListRequest,
        now: datetime,
        sources: Sequence[Source],
        queries: list[SummaryQuery],
        start: tuple[int, str | None],
        piece: int,
        totals: ListingTotals,
    ) -> dict[str, Any]:
        config = self.settings
        explicit = request if isinstance(request, ListRequest) else None
        report = EnqueuedReport() if explicit is not None and explicit.report_enqueued else None
        result = run_listing(
            queries,
            invoicing_for=self.invoicing_for,
            sqs=self.sqs,
            queue_url=config.invoice_queue_url,
            ledger=LedgerView(self.dynamodb, config.ledger_table),
            now=now,
            recheck=isinstance(request, ListRequest) and request.recheck,
            dead_letter_queue_url=config.dead_letter_queue_url,
            start=start,
            skip_sources=tuple(totals.failed_sources),
            time_left=self.time_left if config.listing_queue_url else None,
            reserve_seconds=config.listing_reserve_seconds,
            allowed=set(sources).__contains__,
            observer=report,
            rearchive=explicit is not None and explicit.rearchive,
        )
        self._record_failures(sources, result.failed_sources, stage="listing")
        totals = _add(totals, result)
        response = {**result.as_dict(), **_totals_view(totals), "piece": piece}
        if report is not None:
            response.update(report.response())
        if result.resume_at is not None:
            index, token = result.resume_at
            continuation = ListingContinuation(
                request=event,
                now=now,
                sources=tuple((s.account_id, s.role_arn) for s in sources),
                plan=plan_fingerprint(queries),
                query_index=index,
                next_token=token,
                piece=piece + 1,
                totals=totals,
            )
            self.sqs.send_message(
                QueueUrl=config.listing_queue_url, MessageBody=continuation.model_dump_json()
            )
            metrics.add_metric(name=Metric.LISTING_CONTINUED, unit="Count", value=1)
            logger.info(
                "listing continues in a next invocation",
                extra={"piece": piece, "query_index": index, "queries": len(queries)},
            )
            return {**response, "continued": True}
        return {**response, **self._finish(request, now, sources, totals), "continued": False}

    def _finish(
        self,
        request: ScheduledEvent | ListRequest,
        now: datetime,
        sources: Sequence[Source],
        totals: ListingTotals,
    ) -> dict[str, Any]:
        """What concerns the whole run, once its last piece is done."""
        done: dict[str, Any] = {}
        failed = totals.failed_sources
        for source in sources:
            if source.account_id not in failed:
                source_records.clear_failure(self.dynamodb, self.settings.ledger_table, source)
        metrics.add_metric(name=Metric.SOURCES_FAILED, unit="Count", value=len(failed))
        if isinstance(request, ScheduledEvent):
            readable = [s.account_id for s in sources if s.account_id not in failed]
            missing = accounts_without_invoice(
                totals.listed_per_period, readable, now, self.settings.missing_invoice_day
            )
            if missing is not None:
                metrics.add_metric(name=Metric.ACCOUNTS_WITHOUT_INVOICE, unit="Count", value=len(missing))
                done["accounts_without_invoice"] = missing
                if missing:
                    logger.warning(
                        "no invoice for the last complete billing period", extra={"accounts": missing}
                    )
        return done

    def _check_sources(self, sources: Sequence[Source]) -> None:
        known = KnownSources(self.settings, self.invoicing_for, self.caller_account)
        for source in dict.fromkeys(sources):
            known.check(source)

    def _record_failures(self, sources: Sequence[Source], failed: dict[str, str], *, stage: str) -> None:
        by_account = {s.account_id: s for s in sources}
        now = datetime.now(UTC)
        for account, reason in failed.items():
            source = by_account.get(account, Source(account))
            source_records.record_failure(
                self.dynamodb, self.settings.ledger_table, source, reason=reason, stage=stage, now=now
            )


def _add(totals: ListingTotals, result: ListingResult) -> ListingTotals:
    reasons = Counter(totals.reasons) + Counter({str(k): v for k, v in result.reasons.items()})
    per_period = Counter(totals.listed_per_period) + result.listed_per_period
    return ListingTotals(
        queries_done=totals.queries_done + result.queries_done,
        invoices_listed=totals.invoices_listed + result.invoices_listed,
        messages_sent=totals.messages_sent + result.messages_sent,
        quarantined=totals.quarantined + result.quarantined,
        refused=totals.refused + result.refused,
        reasons=dict(reasons),
        listed_per_period=dict(per_period),
        failed_sources={**totals.failed_sources, **result.failed_sources},
    )


def _totals_view(totals: ListingTotals) -> dict[str, Any]:
    """The run so far (every piece), as the response reports it."""
    enqueued = sum(totals.reasons.values())
    view: dict[str, Any] = {
        "invoices_listed": totals.invoices_listed,
        "messages_sent": totals.messages_sent,
        "quarantined": totals.quarantined,
        "refused": totals.refused,
        "unchanged": totals.invoices_listed - enqueued,
        "reasons": dict(sorted(totals.reasons.items())),
        "queries_done": totals.queries_done,
    }
    if totals.failed_sources:
        view["failed_sources"] = dict(sorted(totals.failed_sources.items()))
    return view
