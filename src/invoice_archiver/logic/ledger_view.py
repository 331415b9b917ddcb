"""The ledger as the lister reads it: one Query per account and billing period, kept for the run."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from invoice_archiver.dal.ledger import lister_view
from invoice_archiver.dal.ledger.records import InvoiceRecord
from invoice_archiver.models.messages import InvoiceMessage

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class LedgerView:
    """The ledger as the lister needs it: one eventually consistent Query per account and period,
    made the first time a summary of that account and period is listed, then kept for the run."""

    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._periods: dict[tuple[str, str], lister_view.PeriodView] = {}
        self.seconds = 0.0

    def record(self, message: InvoiceMessage) -> InvoiceRecord | None:
        place = (message.account_id, message.billing_period)
        view = self._periods.get(place)
        if view is None:
            started = time.monotonic()
            view = lister_view.read_period(self._dynamodb, self._table, message.account_id, message.period)
            self.seconds += time.monotonic() - started
            self._periods[place] = view
        return view.records.get(message.invoice_id)

    @property
    def queries(self) -> int:
        return len(self._periods)

    @property
    def read_units(self) -> float:
        return sum(view.read_units for view in self._periods.values())
