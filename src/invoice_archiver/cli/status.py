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

from invoice_archiver.cli import dlq, queues, target
from invoice_archiver.cli.arguments import account_id, at_least, billing_period
from invoice_archiver.cli.errors import OK, PROBLEMS, endpoint_hint, named_resources
from invoice_archiver.cli.settle import Listed
from invoice_archiver.cli.wording import count
from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import invoices, source_records, states
from invoice_archiver.dal.ledger.records import InvoiceRecord, SourceRecord
from invoice_archiver.dal.ledger.states import Status
from invoice_archiver.models.period import BillingPeriod

# Longer than SQS's whole retry budget (5 receives x 30 min visibility): an invoice still IN_PROGRESS
# or RETRYING after this is not coming back by itself.
STUCK_AFTER_MINUTES = 180
IDLE_RECHECK_SECONDS = 3.0


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
    rows, problems = _tally(table, accounts, args.period, dead, stale_before)

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
    _print_problems(problems, letters, dead, accounts)
    failed_sources = source_records.failed_sources(clients.dynamodb(), table, accounts)
    for source in failed_sources:
        print(f"! SOURCE FAILED {source.account_id} {_source_reason(source)}")
    in_flight = sum(counts[states.IN_FLIGHT] for counts in rows.values())
    idle = _idle_queues(sqs, depths)
    _advise(args, depths, idle, in_flight, len(failed_sources), len(problems), dlq_depth)
    trouble = problems or dlq_depth or failed_sources or (idle and not in_flight)
    return PROBLEMS if trouble else OK


Problem = tuple[str, InvoiceRecord]


def _tally(
    table: str,
    accounts: list[str],
    period: BillingPeriod | None,
    dead: dict[Listed, dlq.DeadLetter],
    stale_before: datetime,
) -> tuple[dict[tuple[str, str], Counter[str]], list[Problem]]:
    """Counts per account and period of each state `states.derive` gives, and the invoices to act on."""
    rows: dict[tuple[str, str], Counter[str]] = {}
    problems: list[Problem] = []
    for account in accounts:
        for record in _records(table, account, period):
            counts = rows.setdefault((account, record.billing_period), Counter())
            state = states.derive(
                record.status,
                updated_at=record.updated_at,
                in_dlq=_identity(record) in dead,
                stale_before=stale_before,
            )
            counts[state] += 1
            if state == Status.ARCHIVED:
                counts["documents"] += record.document_count
                counts["bytes"] += record.total_bytes
            elif state != states.IN_FLIGHT:
                problems.append((state, record))
    return rows, problems


def _print_problems(
    problems: list[Problem],
    letters: list[dlq.DeadLetter],
    dead: dict[Listed, dlq.DeadLetter],
    accounts: list[str],
) -> None:
    for state, record in problems:
        who = f"{record.account_id} {record.billing_period} {record.invoice_id}"
        print(f"! {state:<9} {who}: {_reason(state, record)}")
    seen = {_identity(record) for _, record in problems}
    for letter in letters:
        if letter.invoice is None:
            print(f"! MALFORMED message {letter.message_id} in the DLQ: {letter.reason}")
        elif letter.invoice not in seen and letter.invoice.account_id in accounts:
            invoice = letter.invoice
            print(
                f"! {states.IN_DLQ:<9} {invoice.account_id} {invoice.period} {invoice.invoice_id}: "
                f"{letter.reason}"
            )


def _advise(
    args: argparse.Namespace,
    depths: dict[str, tuple[str, queues.Depth]],
    idle: list[str],
    in_flight: int,
    failed_sources: int,
    problems: int,
    dlq_depth: int,
) -> None:
    """What to do about what was shown, one line per kind of trouble."""
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
            f"{count(failed_sources, 'source')} could not be read: fix the role (its trust policy, "
            "ExternalId or permissions); the next scheduled run reads the source again and clears this."
        )
    if problems or dlq_depth:
        print(
            f"{count(problems, 'invoice')} {_verb(problems, 'needs', 'need')} attention, "
            f"{count(dlq_depth, 'DLQ message')}: fix the cause, then "
            "`invoice-archiver backfill --invoice-id ...` (or the next scheduled run) archives them."
        )


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


def _source_reason(source: SourceRecord) -> str:
    role = source.role_arn or "its own credentials"
    when = f"{source.stage or '?'} since {_time(source.failed_since)}"
    return f"through {role} ({when}, last checked {_time(source.checked_at)}): {source.reason}"


def _time(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "?"


def _records(table: str, account: str, period: BillingPeriod | None) -> list[InvoiceRecord]:
    """The account's invoices in the ledger."""
    with named_resources(table=table):
        return list(invoices.query_period(clients.dynamodb(), table, account, period))


def _identity(record: InvoiceRecord) -> Listed:
    return Listed(record.account_id, record.billing_period, record.invoice_id)


def _reason(state: str, record: InvoiceRecord) -> str:
    error = record.last_error or record.status.value
    if state == states.IN_DLQ:
        return f"its message is in the DLQ after {record.attempts} attempt(s); last error: {error}"
    if state == states.STUCK:
        return f"{record.status} since {_time(record.updated_at)}; last error: {error}"
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
            c[states.IN_FLIGHT],
            c[states.STUCK],
            c[states.IN_DLQ],
            c["documents"],
            c["bytes"],
        )
        print(
            "".join(
                f"{v:<{w}}" if i < 2 else f"{v:>{w}}"
                for i, (v, w) in enumerate(zip(values, widths, strict=True))
            )
        )
