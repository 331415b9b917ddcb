"""`invoice-archiver status`: what the ledger says is archived, failed, in flight, stuck or in the DLQ, and
what waits in the queues.

Reads the ledger, the depths of the invoice queue, the listing queue and the dead-letter queue, and peeks
at the dead-letter queue (every message it reads is made visible again at once), on a deployed stack
(--stack NAME) or on whatever the environment names (LEDGER_TABLE, INVOICE_QUEUE_URL,
DEAD_LETTER_QUEUE_URL, ACCOUNT_IDS, SOURCE_ROLE_ARNS, AWS_ENDPOINT_URL*: e.g. an `invoice-archiver
sandbox`, or nothing at all after a run-local against one). The accounts are --account, else those of
ACCOUNT_IDS and SOURCE_ROLE_ARNS (the stack's functions' own, with --stack), and with
DISCOVER_INVOICE_UNITS=true every account in the ledger, else the caller's own; the first line says which
and why. A source the archive could not read (its role could not be assumed, or the API denied it) is
shown with its role and reason.

Exit 1 when an invoice is FAILED, stuck or in the DLQ, a source is FAILED, or messages wait in a queue
with nothing working on them (an interrupted run-local or backfill on a sandbox; a stack whose fetcher
does not consume its queue).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from invoice_archiver.cli import dlq, queues, target
from invoice_archiver.cli.arguments import account_id, at_least, billing_period
from invoice_archiver.cli.errors import OK, PROBLEMS, CliError, endpoint_hint
from invoice_archiver.cli.settle import Listed
from invoice_archiver.cli.wording import count
from invoice_archiver.constants import LEDGER_SORT_KEY, SOURCE_SORT_KEY, Status
from invoice_archiver.dal import clients, ledger, source_status

# Longer than SQS's whole retry budget (5 receives x 30 min visibility): an invoice still IN_PROGRESS
# or RETRYING after this is not coming back by itself.
STUCK_AFTER_MINUTES = 180
IDLE_RECHECK_SECONDS = 3.0
IN_DLQ = "IN_DLQ"
STUCK = "STUCK"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="the ledger per account and period, the queues, and every invoice not archived with its reason",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target.add_arguments(parser)
    parser.add_argument("--table", help="ledger table (default: the stack's, LEDGER_TABLE, or run-local's)")
    parser.add_argument(
        "--account",
        action="append",
        type=account_id,
        default=None,
        help="account id (repeatable; default: the stack's accounts, ACCOUNT_IDS and SOURCE_ROLE_ARNS, "
        "else the caller's account)",
    )
    parser.add_argument(
        "--period", type=billing_period, default=None, help="only this billing period, YYYY-MM"
    )
    parser.add_argument(
        "--stuck-after",
        type=at_least(0),
        default=STUCK_AFTER_MINUTES,
        metavar="MINUTES",
        help=f"an unfinished invoice untouched this long is stuck (default {STUCK_AFTER_MINUTES})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    where = target.resolve(args.stack)
    table = args.table or where.table
    accounts, why = target.choose_accounts(where, args.account, table)
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
    print(f"Accounts {', '.join(accounts)} ({why})")
    if rows:
        _print_table(rows)
    else:
        print("  no invoice for these accounts" + (f" in {args.period}" if args.period else ""))
    sqs = clients.sqs()
    depths = {
        name: (url, queues.depth(sqs, url))
        for name, url in (
            ("invoice", where.queue_url),
            ("listing", where.listing_queue_url),
            ("dead-letter", where.dead_letter_queue_url),
        )
        if url
    }
    if depths:
        print("Queues: " + "; ".join(f"{name} {depth.describe()}" for name, (_, depth) in depths.items()))
    dlq_depth = depths["dead-letter"][1].total if "dead-letter" in depths else 0
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
    idle = _idle_queues(sqs, depths)
    for name in idle:
        waiting = depths[name][1].waiting
        print(
            f"! {count(waiting, 'message')} {_verb(waiting, 'waits', 'wait')} in the {name} queue "
            "and nothing is working on it: "
            + (
                f"the stack's {'fetcher' if name == 'invoice' else 'lister'} does not consume it (check its "
                "event source mapping and errors)"
                if args.stack
                else "on a sandbox, `invoice-archiver run-local` (or a backfill) drains it"
            )
        )
    if in_flight:
        print(
            f"{count(in_flight, 'invoice')} in flight: the fetcher is on them (or SQS will redeliver them)."
        )
    if failed_sources:
        print(
            f"{count(len(failed_sources), 'source')} could not be read: fix the role (its trust policy, "
            "ExternalId or permissions); the next scheduled run reads the source again and clears this."
        )
    if problems or dlq_depth:
        print(
            f"{count(len(problems), 'invoice')} {_verb(len(problems), 'needs', 'need')} attention, "
            f"{count(dlq_depth, 'DLQ message')}: fix the cause, then "
            "`invoice-archiver backfill --invoice-id ...` (or the next scheduled run) archives them."
        )
    trouble = problems or dlq_depth or failed_sources or (idle and not in_flight)
    return PROBLEMS if trouble else OK


def _idle_queues(sqs: Any, depths: dict[str, tuple[str, queues.Depth]]) -> list[str]:
    """The work queues whose messages wait with none in flight, twice in a row a few seconds apart (between
    two batches, or two pieces of a listing, a working queue can look idle for a moment)."""
    idle = [name for name, (_, depth) in depths.items() if name != "dead-letter" and depth.idle]
    if idle:
        time.sleep(IDLE_RECHECK_SECONDS)
        idle = [name for name in idle if queues.depth(sqs, depths[name][0]).idle]
    return idle


def _verb(number: int, one: str, many: str) -> str:
    return one if number == 1 else many


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
