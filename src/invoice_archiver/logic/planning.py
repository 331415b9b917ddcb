"""Which ListInvoiceSummaries queries a run makes, keeping the API's period rules. Pure: no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from invoice_archiver.constants import RECEIVER_ROLE_DATA_START
from invoice_archiver.models.period import BillingPeriod, last_complete_period, period_range
from invoice_archiver.models.requests import ListRequest
from invoice_archiver.models.source import Source, SourceRefused

ROLE_DATA_START = BillingPeriod(*RECEIVER_ROLE_DATA_START)
MAX_ROLE_WINDOW_YEARS = 5


class PlanningError(ValueError):
    """The request breaks one of the API's rules; raised before any call is made."""


@dataclass(frozen=True)
class SummaryQuery:
    """One paginated ListInvoiceSummaries query, made with the credentials of `role_arn` (None: the
    function's own)."""

    account_id: str | None = None
    invoice_id: str | None = None
    receiver_role: str | None = None
    billing_period: BillingPeriod | None = None
    window: tuple[datetime, datetime] | None = None
    role_arn: str | None = None
    # Why its invoices are enqueued when the ledger says they need the fetcher (None: the ledger's reason).
    reason: str | None = None

    @property
    def source(self) -> Source | None:
        """The source whose credentials make the query (None for an invoice id with own credentials)."""
        if self.account_id is not None:
            return Source(self.account_id, self.role_arn)
        return None

    def request(self) -> dict[str, Any]:
        if self.invoice_id is not None:
            params: dict[str, Any] = {"Selector": {"ResourceType": "INVOICE_ID", "Value": self.invoice_id}}
        else:
            params = {"Selector": {"ResourceType": "ACCOUNT_ID", "Value": self.account_id}}
        filters: dict[str, Any] = {}
        if self.billing_period is not None:
            filters["BillingPeriod"] = self.billing_period.to_api()
        if self.window is not None:
            filters["TimeInterval"] = {"StartDate": self.window[0], "EndDate": self.window[1]}
        if self.receiver_role is not None:
            filters["ReceiverRole"] = self.receiver_role
        if filters:
            params["Filter"] = filters
        return params

    def describe(self) -> str:
        parts = [f"invoice {self.invoice_id}" if self.invoice_id else f"account {self.account_id}"]
        if self.billing_period:
            parts.append(f"period {self.billing_period}")
        if self.window:
            parts.append(f"issued {self.window[0]:%Y-%m-%d}..{self.window[1]:%Y-%m-%d}")
        if self.receiver_role:
            parts.append(f"role {self.receiver_role}")
        if self.role_arn:
            parts.append(f"through {self.role_arn}")
        return ", ".join(parts)

    def fingerprint_part(self) -> str:
        return repr(
            (
                self.account_id,
                self.invoice_id,
                self.receiver_role,
                self.billing_period,
                self.window,
                self.role_arn,
            )
        )


def plan_fingerprint(queries: Sequence[SummaryQuery]) -> str:
    """SHA-256 of the planned queries, in order: a continuation resumes only the plan it was cut from."""
    digest = hashlib.sha256()
    for query in queries:
        digest.update(query.fingerprint_part().encode())
        digest.update(b"\n")
    return digest.hexdigest()


def scheduled_periods(now: datetime, lookback: int) -> list[BillingPeriod]:
    """The last complete billing period and `lookback` periods before it, oldest first."""
    last = last_complete_period(now)
    return period_range(last.shift(-lookback), last)


def plan_scheduled(
    now: datetime, sources: Sequence[Source], roles: Sequence[str], lookback: int
) -> list[SummaryQuery]:
    """A scheduled run. Role queries skip periods before ReceiverRole data exists (the look-back
    of an early deployment may reach back that far; that is not an error of this run)."""
    periods = scheduled_periods(now, lookback)
    return [
        SummaryQuery(
            account_id=source.account_id, receiver_role=role, billing_period=period, role_arn=source.role_arn
        )
        for source in sources
        for role in (roles or (None,))
        for period in periods
        if role is None or period >= ROLE_DATA_START
    ]


def request_sources(request: ListRequest, sources: Sequence[Source]) -> tuple[Source, ...]:
    """The sources of an explicit run: the configured (and discovered) ones, or those of the request's
    accounts, each read as configured. An account that is not a source is refused (SourceRefused): a
    request can narrow what the archive reads, never widen it."""
    if request.accounts is None:
        return tuple(dict.fromkeys(sources))
    known = {source.account_id: source for source in sources}
    unknown = [account for account in dict.fromkeys(request.accounts) if account not in known]
    if unknown:
        raise SourceRefused(
            f"account{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"{'are' if len(unknown) > 1 else 'is'} not a source of this archive (configure it in "
            "ACCOUNT_IDS or SOURCE_ROLE_ARNS, or as an invoice-unit receiver with DISCOVER_INVOICE_UNITS)"
        )
    return tuple(known[account] for account in dict.fromkeys(request.accounts))


def plan_request(request: ListRequest, sources: Sequence[Source], roles: Sequence[str]) -> list[SummaryQuery]:
    """An explicit run. Every query is checked before any is made. An invoice id is looked for with
    each distinct set of credentials (own, and each role): which payer issued it is not known."""
    chosen = request_sources(request, sources)
    roles = tuple(dict.fromkeys(request.receiver_roles if request.receiver_roles is not None else roles))
    role_options: tuple[str | None, ...] = tuple(roles) or (None,)

    periods = [BillingPeriod.parse(p) for p in request.billing_periods]
    if request.from_period and request.to_period:
        periods += period_range(
            BillingPeriod.parse(request.from_period), BillingPeriod.parse(request.to_period)
        )
    periods = sorted(set(periods))

    if roles:
        early = [str(p) for p in periods if p < ROLE_DATA_START]
        if early:
            raise PlanningError(
                f"ReceiverRole data starts {ROLE_DATA_START}-01; cannot list {', '.join(early)} "
                f"with receiver roles {', '.join(roles)} (drop the roles or the early periods)"
            )
        if request.issued_from and request.issued_from < ROLE_DATA_START.start.date():
            raise PlanningError(
                f"ReceiverRole data starts {ROLE_DATA_START}-01; issued_from {request.issued_from} is earlier"
            )

    queries = [
        SummaryQuery(account_id=s.account_id, receiver_role=role, billing_period=period, role_arn=s.role_arn)
        for s in chosen
        for role in role_options
        for period in periods
    ]
    if request.issued_from and request.issued_to:
        for role in role_options:
            for window in split_windows(request.issued_from, request.issued_to, with_role=role is not None):
                queries += [
                    SummaryQuery(
                        account_id=s.account_id, receiver_role=role, window=window, role_arn=s.role_arn
                    )
                    for s in chosen
                ]
    credentials = tuple(dict.fromkeys(s.role_arn for s in chosen)) or (None,)
    queries += [
        SummaryQuery(invoice_id=invoice_id, role_arn=role_arn)
        for invoice_id in dict.fromkeys(request.invoice_ids)
        for role_arn in credentials
    ]
    if not queries:
        raise PlanningError("nothing to list: no accounts are configured")
    return queries


def split_windows(start: date, end: date, *, with_role: bool) -> list[tuple[datetime, datetime]]:
    """Split [start, end) into the TimeInterval windows the API accepts.

    Without ReceiverRole a window may last at most the number of days of its start date's month,
    so calendar months are used; with ReceiverRole a window may span up to five years.
    """
    windows: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        if with_role:
            try:
                limit = cursor.replace(year=cursor.year + MAX_ROLE_WINDOW_YEARS)
            except ValueError:  # 29 February
                limit = cursor.replace(year=cursor.year + MAX_ROLE_WINDOW_YEARS, day=28)
        else:
            # Calendar months: never longer than the start date's month, and aligned with billing months.
            limit = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)
        stop = min(limit, end)
        windows.append((_midnight(cursor), _midnight(stop)))
        cursor = stop
    return windows


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
