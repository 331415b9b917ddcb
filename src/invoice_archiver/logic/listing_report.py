"""What an explicit request with `report_enqueued` gets back: the invoices its invocation enqueued.

A caller that invokes the lister synchronously (the CLI's `backfill --stack`) follows each enqueued invoice
to its end in the ledger; the response names them. A Lambda response holds at most 6 MB, so the list stops
at a budget well inside it and says it is incomplete (`enqueued_complete`: false); the caller then follows
the ledger of the listing's accounts and periods instead. Each piece of a listing that continues through
the listing queue reports its own invoices.
"""

from __future__ import annotations

import json
from typing import Any

from invoice_archiver.logic.listing_result import ListingObserver
from invoice_archiver.models.messages import InvoiceMessage

# Bytes of invoice entries one response may carry (Lambda's synchronous response limit is 6 MB; the
# rest of the response is a few hundred bytes). At ~100 bytes an entry: some 40,000 invoices.
RESPONSE_BUDGET_BYTES = 4_000_000


class EnqueuedReport(ListingObserver):
    def __init__(self, budget_bytes: int = RESPONSE_BUDGET_BYTES) -> None:
        self.invoices: list[dict[str, str]] = []
        self.complete = True
        self._left = budget_bytes

    def listed(self, message: InvoiceMessage, reason: str | None) -> None:
        if reason is None:
            return
        entry = {
            "account_id": message.account_id,
            "billing_period": message.billing_period,
            "invoice_id": message.invoice_id,
            "reason": reason,
        }
        size = len(json.dumps(entry)) + 2
        if size > self._left:
            self.complete = False
            return
        self._left -= size
        self.invoices.append(entry)

    def response(self) -> dict[str, Any]:
        return {"enqueued": self.invoices, "enqueued_complete": self.complete}
