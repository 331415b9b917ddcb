"""The missing-invoice check: by a day of the month, every configured account should have an invoice
for the last complete billing period (AWS issues anniversary invoices in the first days). Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from invoice_archiver.models.period import last_complete_period


def accounts_without_invoice(
    listed_per_period: Mapping[str, int], accounts: Sequence[str], now: datetime, day: int
) -> list[str] | None:
    """Accounts with no invoice listed for the last complete period, or None before `day` (too early).

    `listed_per_period` counts listed invoices per "<account>#<YYYY-MM>", whatever their receiver role.
    """
    if now.day < day:
        return None
    period = last_complete_period(now)
    return [account for account in accounts if not listed_per_period.get(f"{account}#{period}", 0)]
