"""`invoice-archiver status`: what the ledger says is archived, failed or still in flight.

Reads only the ledger (LEDGER_TABLE, ACCOUNT_IDS from the environment, or --table/--account), on
AWS or on whatever AWS_ENDPOINT_URL* point at, e.g. an `invoice-archiver sandbox`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from typing import Any

from invoice_archiver.cli.arguments import billing_period
from invoice_archiver.cli.run_local import LOCAL_DEFAULTS
from invoice_archiver.constants import Status
from invoice_archiver.dal import clients, ledger

LOCAL_TABLE = LOCAL_DEFAULTS["LEDGER_TABLE"]  # the table run-local creates


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="summarize the ledger: archived, failed and in-flight invoices per account and period",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--table", default=os.environ.get("LEDGER_TABLE", LOCAL_TABLE), help="ledger table")
    parser.add_argument(
        "--account",
        action="append",
        default=None,
        help="account id (repeatable; default: ACCOUNT_IDS, else the caller's account)",
    )
    parser.add_argument(
        "--period", type=billing_period, default=None, help="only this billing period, YYYY-MM"
    )
    parser.set_defaults(run=run)


def _accounts(args: argparse.Namespace) -> list[str]:
    if args.account:
        return list(dict.fromkeys(args.account))
    configured = [a.strip() for a in os.environ.get("ACCOUNT_IDS", "").split(",") if a.strip()]
    return configured or [str(clients.sts().get_caller_identity()["Account"])]


def run(args: argparse.Namespace) -> int:
    rows: dict[tuple[str, str], Counter[str]] = {}
    problems: list[dict[str, Any]] = []
    for account in _accounts(args):
        for item in ledger.query_period(clients.dynamodb(), args.table, account, args.period):
            counts = rows.setdefault((account, str(item.get("billing_period", "?"))), Counter())
            status = str(item.get("status", "?"))
            counts[status] += 1
            if status == Status.ARCHIVED:
                counts["documents"] += int(item.get("document_count", 0))
                counts["bytes"] += int(item.get("total_bytes", 0))
            else:
                problems.append(item)
    if not rows:
        print("The ledger holds no invoice for these accounts and periods.")
        return 0
    print(
        f"{'account':<14}{'period':<9}{'archived':>9}{'failed':>8}{'in flight':>10}"
        f"{'documents':>11}{'bytes':>14}"
    )
    for (account, period), counts in sorted(rows.items()):
        in_flight = counts[Status.IN_PROGRESS] + counts[Status.RETRYING]
        print(
            f"{account:<14}{period:<9}{counts[Status.ARCHIVED]:>9}{counts[Status.FAILED]:>8}{in_flight:>10}"
            f"{counts['documents']:>11}{counts['bytes']:>14}"
        )
    for item in problems:
        who = f"{item.get('account_id')} {item.get('invoice_id')}"
        print(f"! {item.get('status')} {who}: {item.get('last_error', '')}")
    if problems:
        print(
            f"{len(problems)} invoice(s) not archived; a scheduled run or a backfill retries them.",
            file=sys.stderr,
        )
    return 0
