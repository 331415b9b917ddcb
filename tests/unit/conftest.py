"""Factory fixtures: inputs shaped like the real ones, built with only the fields a test changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from invoice_archiver.models.messages import InvoiceMessage

from .factories import ACCOUNT, QUEUE_URL, EnvFactory, EventFactory, MessageFactory, SummaryFactory


@pytest.fixture
def make_env() -> EnvFactory:
    """``make_env(**overrides)``: every required variable of both functions set; ``NAME=None`` drops one."""

    def factory(**overrides: str | None) -> dict[str, str]:
        env: dict[str, str | None] = {
            "ARCHIVE_BUCKET": "invoice-archive",
            "LEDGER_TABLE": "invoice-ledger",
            "INVOICE_QUEUE_URL": QUEUE_URL,
            **overrides,
        }
        return {name: value for name, value in env.items() if value is not None}

    return factory


@pytest.fixture
def make_summary() -> SummaryFactory:
    """``make_summary(**overrides)``: a summary as boto3 returns it (datetimes, Decimals)."""

    def factory(**overrides: Any) -> dict[str, Any]:
        issued = datetime(2025, 7, 2, 9, 30, tzinfo=UTC)
        summary: dict[str, Any] = {
            "AccountId": ACCOUNT,
            "InvoiceId": "EUINGB25-123456",
            "IssuedDate": issued,
            "DueDate": issued + timedelta(days=30),
            "BillSourceAccounts": [ACCOUNT],
            "BillSourceAccountsTotalCount": 1,
            "Entity": {"InvoicingEntity": "Amazon Web Services EMEA SARL", "BillingEntity": "AWS"},
            "BillingPeriod": {"Month": 6, "Year": 2025},
            "InvoiceType": "INVOICE",
            "ReceiverRole": "BUYER",
            "BillType": "ANNIVERSARY",
            "InvoiceFrequency": "RECURRING",
            "BaseCurrencyAmount": {
                "TotalAmount": Decimal("123.45"),
                "TotalAmountBeforeTax": Decimal("102.88"),
                "CurrencyCode": "USD",
            },
        }
        summary.update(overrides)
        return summary

    return factory


@pytest.fixture
def make_message() -> MessageFactory:
    """``make_message(**overrides)``: a valid InvoiceMessage, a version 2 pointer; with ``version=1`` (or a
    ``summary``) the legacy form that carried its summary, whose ids follow the message's by default."""

    def factory(**overrides: Any) -> InvoiceMessage:
        fields: dict[str, Any] = {
            "account_id": ACCOUNT,
            "invoice_id": "EUINGB25-123456",
            "billing_period": "2025-06",
        }
        fields.update(overrides)
        if fields.get("version") != 1 and "summary" not in fields:
            return InvoiceMessage(**fields)
        fields["version"] = fields.get("version", 1)
        summary = fields.pop("summary", None)
        if summary is None:
            summary = {
                "AccountId": fields["account_id"],
                "InvoiceId": fields["invoice_id"],
                "BillingPeriod": {"Month": 6, "Year": 2025},
                "IssuedDate": "2025-07-02T09:30:00+00:00",
            }
        return InvoiceMessage(summary=summary, **fields)

    return factory


@pytest.fixture
def scheduled_event() -> EventFactory:
    """``scheduled_event(time=...)``: an EventBridge "Scheduled Event" exactly as Lambda receives it."""

    def factory(time: str = "2025-08-01T06:00:00Z", **overrides: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "version": "0",
            "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": time,
            "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/invoice-archiver-schedule"],
            "detail": {},
        }
        event.update(overrides)
        return event

    return factory
