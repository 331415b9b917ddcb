"""Which accounts a run reads, and with whose credentials: the configured sources, and optionally the
receivers of each source's invoice units (ListInvoiceUnits)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from botocore.exceptions import ClientError

from invoice_archiver.config import Settings
from invoice_archiver.dal import invoicing as invoicing_api
from invoice_archiver.dal.sources import SourceUnavailable
from invoice_archiver.logic.listing import DENIED, InvoicingFor
from invoice_archiver.logic.notices import redact
from invoice_archiver.models.source import Source
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
