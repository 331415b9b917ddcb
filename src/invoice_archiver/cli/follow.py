"""Following a backfill on a stack: the stack's fetcher archives, the command reads the ledger until every
invoice is settled, the queues are empty, or `--timeout` passes.

* The lister named every invoice it enqueued: those are followed (one Query per account and period every
  few seconds). When the invoice queue has been empty twice in a row, what is still unsettled is in the
  DLQ (or lost): the command stops waiting and peeks at the DLQ to say which.
* It could not (its names did not fit in a response, or the listing continued through the listing queue,
  whose later pieces run where the command cannot see their responses): every ledger item of the
  listing's accounts and periods written since the backfill started is followed, until nothing of it is
  unsettled and both the invoice queue and the listing queue have been empty twice in a row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from invoice_archiver.cli import dlq, queues
from invoice_archiver.cli.listing_call import Listing
from invoice_archiver.cli.progress import track
from invoice_archiver.cli.settle import Settlement, settle, settle_touched
from invoice_archiver.cli.target import Target
from invoice_archiver.dal import clients
from invoice_archiver.logic.changes import Reason

POLL_SECONDS = 5.0
RECHECKED = frozenset({str(Reason.RECHECK), str(Reason.CHANGED), str(Reason.DUE)})


@dataclass
class Followed:
    result: Settlement
    timed_out: bool = False


def where_they_stand(listing: Listing, where: Target, started: datetime) -> Settlement:
    """The ledger's word on the backfill's invoices, named or (when they could not be named) touched."""
    if not listing.followable:
        return settle_touched(listing.accounts, listing.periods, where.table, started)
    rechecks = {invoice for invoice, why in listing.enqueued.items() if why in RECHECKED}
    rearchives = {invoice for invoice, why in listing.enqueued.items() if why == Reason.REARCHIVE}
    return settle(listing.enqueued, where.table, started, rechecks, rearchives)


def follow(listing: Listing, where: Target, started: datetime, timeout: float | None) -> Followed:
    """Poll until settled, the queues stay empty, or the timeout passes (then `timed_out`)."""
    deadline = time.monotonic() + timeout if timeout is not None else None
    idle_polls = 0
    watched = [where.queue_url] + ([] if listing.followable else [where.listing_queue_url])
    total = len(listing.enqueued) if listing.followable else None
    with track("archiving", total, unit="invoices") as tracker:
        while True:
            result = where_they_stand(listing, where, started)
            if total is None:
                tracker.set_total(result.settled + len(result.pending))
            tracker.set_completed(result.settled)
            tracker.note(f"{len(result.failed)} failed" if result.failed else "")
            empty = all(queues.depth(clients.sqs(), url).total == 0 for url in watched if url)
            idle_polls = idle_polls + 1 if empty else 0
            if not result.pending and (listing.followable or idle_polls >= 2):
                break
            # Queues empty twice in a row: what is still pending is in the DLQ (or lost); stop waiting.
            if idle_polls >= 2:
                break
            if deadline is not None and time.monotonic() >= deadline:
                mark_dead_letters(result, where)
                return Followed(result, timed_out=True)
            time.sleep(POLL_SECONDS)
    mark_dead_letters(result, where)
    return Followed(result)


def mark_dead_letters(result: Settlement, where: Target) -> None:
    if not result.pending or not where.dead_letter_queue_url:
        return
    dead = {letter.invoice for letter in dlq.peek(clients.sqs(), where.dead_letter_queue_url)}
    result.pending = [
        (invoice, f"in the DLQ; last ledger state {reason}" if invoice in dead else reason)
        for invoice, reason in result.pending
    ]
