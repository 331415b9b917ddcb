"""A message is a pointer, not evidence: the fetcher confirms each invoice with the Invoicing API.

Before anything is written to S3, `confirm` asks ListInvoiceSummaries for the message's invoice id
(Selector INVOICE_ID), through the invoice's own source (the function's credentials, or the payer role
it was listed through), and keeps the one summary of the message's account. That summary, read in this
invocation, is what the archive holds: summary.json, tags, metadata, fingerprint, events. What the
message said about the invoice (a version 1 message's summary) is never used.

An invoice the API does not list for that account and source, or lists for another billing period, is
`NotConfirmed`: a permanent failure, recorded FAILED with the reason; nothing reaches S3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_archiver.dal import invoicing as invoicing_api
from invoice_archiver.logic.invoice_messages import jsonable
from invoice_archiver.models.invoice import VerifiedInvoice
from invoice_archiver.models.messages import InvoiceMessage, contains_presigned_url
from invoice_archiver.models.period import BillingPeriod

if TYPE_CHECKING:
    from mypy_boto3_invoicing import InvoicingClient


class NotConfirmed(Exception):
    """The Invoicing API does not confirm what the message names: nothing is archived."""


def confirm(client: InvoicingClient, message: InvoiceMessage) -> VerifiedInvoice:
    """The invoice as the API lists it now for the message's account, through `client` (the source's)."""
    listed = invoicing_api.summaries_of_invoice(client, message.invoice_id)
    through = message.role_arn or "the function's own credentials"
    mine = [
        jsonable(summary)
        for summary in listed
        if summary.get("InvoiceId") == message.invoice_id and summary.get("AccountId") == message.account_id
    ]
    if not mine:
        others = sorted({str(s.get("AccountId")) for s in listed if s.get("InvoiceId") == message.invoice_id})
        elsewhere = f" (it lists it for account {', '.join(others)})" if others else ""
        raise NotConfirmed(
            f"the Invoicing API lists no invoice {message.invoice_id} for account {message.account_id} "
            f"through {through}{elsewhere}; nothing archived"
        )
    summary = mine[0]
    if any(other != summary for other in mine[1:]):
        raise NotConfirmed(
            f"the Invoicing API lists {len(mine)} different summaries for invoice {message.invoice_id} "
            f"of account {message.account_id}; nothing archived"
        )
    period = _period(summary)
    if period != message.billing_period:
        raise NotConfirmed(
            f"the Invoicing API lists invoice {message.invoice_id} for billing period {period or 'none'}, "
            f"not {message.billing_period}; nothing archived"
        )
    if contains_presigned_url(summary):
        raise NotConfirmed(
            f"the summary of invoice {message.invoice_id} holds a pre-signed URL; it is never archived"
        )
    return VerifiedInvoice(
        source=message.source,
        invoice_id=message.invoice_id,
        billing_period=period,
        summary=summary,
    )


def _period(summary: dict[str, object]) -> str:
    value = summary.get("BillingPeriod")
    if not isinstance(value, dict):
        return ""
    try:
        return str(BillingPeriod.from_api(value))
    except (KeyError, TypeError, ValueError):
        return ""
