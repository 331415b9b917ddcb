"""`invoice-archiver mark-unsettled`: once, after upgrading to the index of unsettled invoices.

Each scheduled run re-queues the invoices in the ledger's index of unsettled invoices, whatever their
period (logic/unsettled.py). An item written before that index existed is not in it: this command gives
`unsettled_since` (its `updated_at`) to each such item that is unsettled (IN_PROGRESS, RETRYING, FAILED
because its source could not be read, ARCHIVED with its event unsent), with one Scan of the ledger and one
conditional update per item it marks. Running it again marks nothing new. Exit 0.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from invoice_archiver.cli import target
from invoice_archiver.cli.errors import OK, named_resources
from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import unsettled


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "mark-unsettled",
        help="once after upgrading: put the ledger's unsettled invoices into the index the lister reads",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target.add_arguments(parser)
    parser.add_argument("--table", help="ledger table (default: the stack's, LEDGER_TABLE, or run-local's)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    table = args.table or target.resolve(args.stack, queues=False).table
    with named_resources(table=table):
        scanned, marked = unsettled.mark_old_items(clients.dynamodb(), table, datetime.now(UTC))
    print(f"{table}: {scanned} items scanned, {marked} unsettled invoices marked for the daily re-queue")
    return OK
