"""`invoice-archiver status`: what the ledger says is archived, failed, in flight, stuck or in the DLQ.

Reads the ledger and peeks at the dead-letter queue (every message it reads is made visible again at
once), on a deployed stack (--stack NAME) or on whatever the environment names (LEDGER_TABLE,
DEAD_LETTER_QUEUE_URL, ACCOUNT_IDS, SOURCE_ROLE_ARNS, AWS_ENDPOINT_URL*: e.g. an `invoice-archiver
sandbox`, or nothing at all after a run-local against one). The accounts are those of ACCOUNT_IDS and
SOURCE_ROLE_ARNS, and with DISCOVER_INVOICE_UNITS=true every account in the ledger. A source the archive
could not read (its role could not be assumed, or the API denied it) is shown with its role and reason.
Exit 1 when an invoice is FAILED, stuck or in the DLQ, or a source is FAILED.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from invoice_archiver.cli import dlq, target
from invoice_archiver.cli.arguments import billing_period
from invoice_archiver.cli.enqueue import Listed
from invoice_archiver.cli.errors import OK, PROBLEMS, CliError, endpoint_hint
from invoice_archiver.constants import LEDGER_SORT_KEY, SOURCE_SORT_KEY, Status
from invoice_archiver.dal import clients, ledger, source_status

# Longer than SQS's whole retry budget (5 receives x 30 min visibility): an invoice still IN_PROGRESS
# or RETRYING after this is not coming back by itself.
STUCK_AFTER_MINUTES = 180
IN_DLQ = "IN_DLQ"
STUCK = "STUCK"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="the ledger per account and period, the DLQ, and every invoice not archived with its reason",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target.add_arguments(parser)
    parser.add_argument("--table", help="ledger table (default: the stack's, LEDGER_TABLE, or run-local's)")
    parser.add_argument(
        "--account",
        action="append",
        default=None,
        help="account id (repeatable; default: the stack's accounts, ACCOUNT_IDS and SOURCE_ROLE_ARNS, "
        "else the caller's account)",
    )
    parser.add_argument(
        "--period", type=billing_period, default=None, help="only this billing period, YYYY-MM"
    )
    parser.add_argument(
        "--stuck-after",
        type=int,
        default=STUCK_AFTER_MINUTES,
        metavar="MINUTES",
        help=f"an unfinished invoice untouched this long is stuck (default {STUCK_AFTER_MINUTES})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    where = target.resolve(args.stack)
    table = args.table or where.table
    accounts = target.accounts_or_caller(where, args.account, table)
    letters = dlq.peek(clients.sqs(), where.dead_letter_queue_url) if where.dead_letter_queue_url else []
    dead = {letter.invoice: letter for letter in letters if letter.invoice is not None}
    stale_before = datetime.now(UTC) - timedelta(minutes=args.stuck_after)

    rows: dict[tuple[str, str], Counter[str]] = {}
    problems: list[tuple[str, dict[str, Any]]] = []
    for account in accounts:
        for item in _items(table, account, args):
            counts = rows.setdefault((account, str(item.get("billing_period", "?"))), Counter())
            state = _state(item, dead, stale_before)
            counts[state] += 1
            if state == Status.ARCHIVED:
                counts["documents"] += int(item.get("document_count", 0))
                counts["bytes"] += int(item.get("total_bytes", 0))
            elif state != "IN_FLIGHT":
                problems.append((state, item))

    print(f"Ledger {table} ({where.describe() if args.stack else endpoint_hint()})")
    if rows:
        _print_table(rows)
    else:
        print(
            f"  no invoice for accounts {', '.join(accounts)}" + (f" in {args.period}" if args.period else "")
        )
    depth = dlq.depth(clients.sqs(), where.dead_letter_queue_url)
    if where.dead_letter_queue_url:
        print(f"Dead-letter queue: {depth} message(s) ({where.dead_letter_queue_url.rsplit('/', 1)[-1]})")
    for state, item in problems:
        who = f"{item.get('account_id')} {item.get('billing_period')} {item.get('invoice_id')}"
        print(f"! {state:<9} {who}: {_reason(state, item, dead)}")
    seen = {_identity(item) for _, item in problems}
    for letter in letters:
        if letter.invoice is None:
            print(f"! MALFORMED message {letter.message_id} in the DLQ: {letter.reason}")
        elif letter.invoice not in seen and letter.invoice.account_id in accounts:
            invoice = letter.invoice
            print(
                f"! {IN_DLQ:<9} {invoice.account_id} {invoice.period} {invoice.invoice_id}: {letter.reason}"
            )
    failed_sources = source_status.failed_sources(clients.dynamodb(), table, accounts)
    for source in failed_sources:
        print(f"! SOURCE FAILED {source.get('pk')} {_source_reason(source)}")
    in_flight = sum(counts["IN_FLIGHT"] for counts in rows.values())
    if in_flight:
        print(f"{in_flight} invoice(s) in flight: the fetcher is on them (or SQS will redeliver them).")
    if failed_sources:
        print(
            f"{len(failed_sources)} source(s) could not be read: fix the role (its trust policy, ExternalId "
            "or permissions); the next scheduled run reads the source again and clears this."
        )
    if problems or depth:
        print(
            f"{len(problems)} invoice(s) need attention, {depth} DLQ message(s): fix the cause, then "
            "`invoice-archiver backfill --invoice-id ...` (or the next scheduled run) archives them."
        )
    return PROBLEMS if problems or depth or failed_sources else OK


def _source_reason(source: dict[str, Any]) -> str:
    role = source.get("role_arn") or "its own credentials"
    when = f"{source.get('stage', '?')} since {source.get('failed_since', '?')}"
    return (
        f"through {role} ({when}, last checked {source.get('checked_at', '?')}): {source.get('reason', '')}"
    )


def _items(table: str, account: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The account's invoices in the ledger (not its source record, which shares the partition)."""
    try:
        items = ledger.query_period(clients.dynamodb(), table, account, args.period)
        return [item for item in items if item.get(LEDGER_SORT_KEY) != SOURCE_SORT_KEY]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise CliError(
                f"ledger table {table!r} not found ({endpoint_hint()}): pass --stack NAME or --table, or set "
                f"LEDGER_TABLE (run-local creates {target.LOCAL_DEFAULTS['LEDGER_TABLE']!r})"
            ) from None
        raise


def _state(item: dict[str, Any], dead: dict[Listed, dlq.DeadLetter], stale_before: datetime) -> str:
    status = str(item.get("status", "?"))
    if status in (Status.ARCHIVED, Status.FAILED):
        return status
    if _identity(item) in dead:
        return IN_DLQ
    updated = item.get("updated_at")
    if updated and datetime.fromisoformat(str(updated)) < stale_before:
        return STUCK
    return "IN_FLIGHT"


def _identity(item: dict[str, Any]) -> Listed:
    return Listed(str(item.get("account_id")), str(item.get("billing_period")), str(item.get("invoice_id")))


def _reason(state: str, item: dict[str, Any], dead: dict[Listed, dlq.DeadLetter]) -> str:
    error = str(item.get("last_error", "")) or str(item.get("status", ""))
    if state == IN_DLQ:
        return f"its message is in the DLQ after {item.get('attempts', '?')} attempt(s); last error: {error}"
    if state == STUCK:
        return f"{item.get('status')} since {item.get('updated_at')}; last error: {error}"
    return error


def _print_table(rows: dict[tuple[str, str], Counter[str]]) -> None:
    header = ("account", "period", "archived", "failed", "in flight", "stuck", "in DLQ", "documents", "bytes")
    widths = (14, 9, 10, 8, 11, 7, 8, 11, 14)
    print(
        "".join(
            f"{h:<{w}}" if i < 2 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for (account, period), c in sorted(rows.items()):
        values = (
            account,
            period,
            c[Status.ARCHIVED],
            c[Status.FAILED],
            c["IN_FLIGHT"],
            c[STUCK],
            c[IN_DLQ],
            c["documents"],
            c["bytes"],
        )
        print(
            "".join(
                f"{v:<{w}}" if i < 2 else f"{v:>{w}}"
                for i, (v, w) in enumerate(zip(values, widths, strict=True))
            )
        )
