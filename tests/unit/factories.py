"""Constants and factory type aliases shared by the unit tests (the factories are fixtures in conftest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from invoice_archiver.dal.ledger.records import InvoiceRecord
from invoice_archiver.models.messages import InvoiceMessage

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/invoices"

EnvFactory = Callable[..., dict[str, str]]
SummaryFactory = Callable[..., dict[str, Any]]
EventFactory = Callable[..., dict[str, Any]]
MessageFactory = Callable[..., InvoiceMessage]

# Twelve FULLWIDTH digits (Unicode category Nd): `\d` and str.isdigit() accept them, AWS does not.
FULLWIDTH_ACCOUNT = "".join(chr(0xFF10 + int(digit)) for digit in ACCOUNT)


def ledger_record(fields: dict[str, Any] | None) -> InvoiceRecord | None:
    """A ledger record with these attributes (and an invoice's identity), None for None."""
    if fields is None:
        return None
    identity = {"account_id": ACCOUNT, "invoice_id": "E1", "billing_period": "2026-10"}
    return InvoiceRecord.model_validate({**identity, **fields})
