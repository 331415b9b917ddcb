"""Which accounts a run reads, and with whose credentials: the configured sources, and optionally the
receivers of each source's invoice units (ListInvoiceUnits)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from botocore.exceptions import ClientError

from invoice_archiver.config import Settings
from invoice_archiver.dal import invoicing as invoicing_api
from invoice_archiver.dal.sources import SourceUnavailable
from invoice_archiver.logic.listing import DENIED, InvoicingFor
from invoice_archiver.logic.notices import redact
from invoice_archiver.models.source import Source, SourceRefused
from invoice_archiver.observability import logger


def configured_sources(settings: Settings, default_account: Callable[[], str]) -> tuple[Source, ...]:
    """ACCOUNT_IDS (own credentials) and SOURCE_ROLE_ARNS; neither set: the caller's own account."""
    return combine_sources(settings.account_ids, settings.source_role_arns, default_account)


def combine_sources(
    account_ids: Sequence[str], role_sources: Sequence[Source], default_account: Callable[[], str]
) -> tuple[Source, ...]:
    sources = tuple(Source(account) for account in account_ids) + tuple(role_sources)
    return sources or (Source(default_account()),)


def discover_units(
    sources: Sequence[Source], invoicing_for: InvoicingFor
) -> tuple[tuple[Source, ...], dict[str, str]]:
    """The sources plus every invoice-unit receiver each set of credentials manages (read through the
    same credentials), and the sources whose discovery failed, with why. ListInvoiceUnits is called once
    per distinct set of credentials."""
    found = list(sources)
    known = {source.account_id for source in sources}
    failed: dict[str, str] = {}
    for role_arn in dict.fromkeys(source.role_arn for source in sources):
        try:
            receivers = invoicing_api.invoice_unit_receivers(invoicing_for(role_arn))
        except SourceUnavailable as exc:
            reason = str(exc)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if str(error.get("Code", "")) not in DENIED:
                raise
            reason = redact(f"ListInvoiceUnits: {error.get('Code', '')}: {error.get('Message', '')}")
        else:
            added = [r for r in receivers if r not in known]
            known.update(added)
            found += [Source(receiver, role_arn) for receiver in added]
            logger.info(
                "invoice units discovered",
                extra={"role_arn": role_arn, "receivers": receivers, "added": added},
            )
            continue
        for source in sources:
            if source.role_arn == role_arn:
                failed[source.account_id] = reason
    return tuple(found), failed


class KnownSources:
    """The sources a function may read, to check what a message or a continuation names against.

    Configured: ACCOUNT_IDS (own credentials) and SOURCE_ROLE_ARNS (neither: the function's own account).
    Discovered, with DISCOVER_INVOICE_UNITS: the receivers of the invoice units each configured set of
    credentials manages, read with those credentials (ListInvoiceUnits, asked at most once per set of
    credentials every `ttl` seconds, so a receiver added since cold start is known within that time).
    Thread-safe: the fetcher checks the records of a batch on several threads.
    """

    def __init__(
        self,
        settings: Settings,
        invoicing_for: InvoicingFor,
        default_account: Callable[[], str],
        *,
        ttl: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._invoicing_for = invoicing_for
        self._default_account = default_account
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._discovering = threading.Lock()
        self._configured: tuple[Source, ...] | None = None
        self._receivers: dict[str | None, tuple[float, frozenset[str]]] = {}

    def configured(self) -> tuple[Source, ...]:
        with self._lock:
            if self._configured is None:
                self._configured = configured_sources(self._settings, self._default_account)
            return self._configured

    def check(self, source: Source) -> None:
        """Return if `source` is configured or discovered; else raise SourceRefused with the reason."""
        configured = self.configured()
        if source in configured:
            return
        roles = {s.role_arn for s in configured}
        discovering = self._settings.discover_invoice_units
        if discovering and source.role_arn in roles and source.account_id in self._units(source.role_arn):
            return
        through = source.role_arn or "the function's own credentials"
        also = ", nor an invoice-unit receiver read through it" if discovering else ""
        raise SourceRefused(
            f"account {source.account_id} through {through} is not a source of this archive: not "
            f"configured (ACCOUNT_IDS, SOURCE_ROLE_ARNS){also}"
        )

    def _units(self, role_arn: str | None) -> frozenset[str]:
        with self._discovering:  # one ListInvoiceUnits per expiry, however many threads ask at once
            now = self._clock()
            cached = self._receivers.get(role_arn)
            if cached is None or now - cached[0] >= self._ttl:
                receivers = invoicing_api.invoice_unit_receivers(self._invoicing_for(role_arn))
                cached = self._receivers[role_arn] = (now, frozenset(receivers))
            return cached[1]
