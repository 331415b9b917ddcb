"""`invoice-archiver backfill`: archive a range of billing periods, an issue-date range, or named invoices.

The listing is the lister's own code (planning under the API's rules, checked before any call; the same
paging and messages), run with your credentials. Then:

  --stack NAME        the messages go to the stack's queue and its fetcher archives them; the command
                      follows the ledger with a progress bar until every invoice is settled
                      (--no-wait: enqueue and return)
  AWS_ENDPOINT_URL    (a sandbox) the real fetcher runs in this process, as run-local does

As on a schedule, only what is new, changed, not yet archived or due is enqueued. --recheck enqueues
every listed invoice, an archived one as a re-check (fresh URLs, new documents, a revision if anything
changed). --invoice-id re-archives: an ARCHIVED invoice is reopened first, so every document is fetched
again; deleted objects are re-created, objects that still hold the same bytes are kept, and an object
replaced by different bytes is reported as a conflict. Nothing is ever overwritten.

Sources read through a role (SOURCE_ROLE_ARNS, DISCOVER_INVOICE_UNITS) are accounts of the archive, but
the backfill's listing reads with your own credentials only: it refuses to list them (exit 2) rather than
list the wrong account; --accounts with ACCOUNT_IDS accounts still works.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from invoice_archiver.cli import dlq, enqueue, local, target
from invoice_archiver.cli.api_counters import COUNTERS, ApiCounters
from invoice_archiver.cli.errors import OK, PROBLEMS, CliError
from invoice_archiver.cli.pipeline import drain_queue, why_nothing_listed
from invoice_archiver.cli.progress import track
from invoice_archiver.cli.settle import Settlement, settle
from invoice_archiver.dal import clients
from invoice_archiver.logic.changes import Reason
from invoice_archiver.models.requests import ListRequest

POLL_SECONDS = 5.0
RECHECKED = {str(Reason.RECHECK), str(Reason.CHANGED), str(Reason.DUE)}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "backfill",
        help="archive a range of periods, an issue-date range or named invoices, with progress",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_argument_group("what to archive (one of)")
    what.add_argument("--from", dest="from_period", metavar="YYYY-MM", help="first billing period")
    what.add_argument("--to", dest="to_period", metavar="YYYY-MM", help="last billing period (inclusive)")
    what.add_argument("--issued-from", type=_day, metavar="YYYY-MM-DD", help="first issue date")
    what.add_argument("--issued-to", type=_day, metavar="YYYY-MM-DD", help="issue dates before this one")
    what.add_argument("--invoice-id", nargs="+", metavar="ID", help="re-archive these invoices")
    parser.add_argument(
        "--recheck", action="store_true", help="re-check archived invoices too (new documents, revisions)"
    )
    parser.add_argument("--accounts", type=_csv, help="comma-separated account ids (default: configured)")
    parser.add_argument("--roles", type=_csv, help="comma-separated receiver roles: SELLER,RESELLER,BUYER")
    target.add_arguments(parser)
    parser.add_argument("--no-wait", action="store_true", help="with --stack: enqueue and return")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="with --stack: stop following after")
    parser.add_argument("--workers", type=int, default=4, help="local fetchers (default 4)")
    parser.add_argument(
        "--log-file", type=Path, default=Path(".local/backfill.log"), help="local function logs"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    request = _request(args)
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    if not args.stack and not local.has_endpoints():
        raise CliError(
            "name where to archive: --stack NAME (a deployed stack), or export the lines of a running "
            "`invoice-archiver sandbox` (AWS_ENDPOINT_URL...) to run the fetcher here"
        )
    if args.stack:
        return _on_stack(args, request)
    return _on_endpoints(args, request)


def _request(args: argparse.Namespace) -> ListRequest:
    fields = {
        "from_period": args.from_period,
        "to_period": args.to_period,
        "issued_from": args.issued_from,
        "issued_to": args.issued_to,
        "invoice_ids": tuple(args.invoice_id or ()),
        "accounts": tuple(args.accounts) if args.accounts else None,
        "receiver_roles": tuple(r.upper() for r in args.roles) if args.roles else None,
        "recheck": args.recheck,
    }
    try:
        return ListRequest(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        flags = message.replace("from_period", "--from").replace("to_period", "--to")
        flags = flags.replace("issued_from", "--issued-from").replace("issued_to", "--issued-to")
        flags = flags.replace("billing_periods, ", "").replace("invoice_ids", "--invoice-id")
        raise CliError(flags) from None


def _list(request: ListRequest, where: target.Target, started: datetime) -> enqueue.Listing:
    queries = enqueue.plan_backfill(
        request, where, lambda: str(clients.sts().get_caller_identity()["Account"])
    )

    def reopen(batch: list[enqueue.Listed]) -> None:
        if request.invoice_ids:
            enqueue.reopen_archived(batch, where, started)

    with track("listing", len(queries), unit="queries") as tracker:
        listing = enqueue.list_and_enqueue(
            queries,
            where,
            tracker,
            now=started,
            recheck=request.recheck or bool(request.invoice_ids),
            before_send=reopen,
        )
    print(
        f"Listed {len(listing.listed)} invoices with {len(queries)} "
        f"{'query' if len(queries) == 1 else 'queries'}; enqueued "
        f"{len(listing.enqueued)} to {where.queue_url}"
        + (f" ({listing.unchanged} archived and unchanged)" if listing.unchanged else "")
    )
    if not listing.listed:
        periods = sorted({str(q.billing_period) for q in queries if q.billing_period})
        accounts = sorted({q.account_id for q in queries if q.account_id})
        roles = request.receiver_roles or where.roles
        print(f"Nothing listed: {why_nothing_listed(periods, accounts, roles, started)}.")
    for account, reason in sorted(listing.failed_sources.items()):
        print(f"! Source {account} cannot be read, skipped: {reason}")
    if listing.quarantined:
        print(
            f"! {listing.quarantined} summaries could not become a message; "
            "they are in the DLQ with the reason"
        )
    return listing


def _rechecks(listing: enqueue.Listing) -> set[enqueue.Listed]:
    """Enqueued archived invoices the fetcher will re-check (settled once re-checked, not before)."""
    return {invoice for invoice, why in listing.enqueued.items() if why in RECHECKED}


def _on_endpoints(args: argparse.Namespace, request: ListRequest) -> int:
    local.check_log_file(args.log_file)
    local.apply_defaults()
    local.provision()
    where = target.resolve(None)
    print(f"invoice-archiver backfill on {where.describe()}; the fetcher runs in this process")
    counters = COUNTERS
    before = counters.snapshot()
    started = datetime.now(UTC)
    listing = _list(request, where, started)
    local.start_log(args.log_file)
    if listing.enqueued:
        expected = len(listing.enqueued)
        with track("archiving", expected, unit="invoices") as tracker, local.logs_to(args.log_file):
            drain_queue(where.queue_url, args.workers, tracker, expected)
    result = settle(listing.listed, where.table, started, _rechecks(listing))
    _mark_dead_letters(result, where)
    _print_result(result, len(listing.listed), counters.since(before))
    print(f"Function logs: {args.log_file}")
    return OK if result.clean and not (listing.failed_sources or listing.quarantined) else PROBLEMS


def _on_stack(args: argparse.Namespace, request: ListRequest) -> int:
    where = target.resolve(args.stack)
    print(f"invoice-archiver backfill on {where.describe()}")
    started = datetime.now(UTC)
    listing = _list(request, where, started)
    if args.no_wait or not listing.enqueued:
        if listing.enqueued:
            print(f"Not waiting; follow with: invoice-archiver status --stack {args.stack}")
        return PROBLEMS if listing.failed_sources or listing.quarantined else OK
    try:
        result = _follow(listing, where, started, args.timeout)
    except KeyboardInterrupt:
        print(f"Stopped following; the stack keeps archiving: invoice-archiver status --stack {args.stack}")
        raise
    _print_result(result, len(listing.listed))
    return OK if result.clean and not (listing.failed_sources or listing.quarantined) else PROBLEMS


def _follow(
    listing: enqueue.Listing, where: target.Target, started: datetime, timeout: float | None
) -> Settlement:
    """Poll the ledger until every invoice is settled, the queue is empty, or the timeout passes."""
    deadline = time.monotonic() + timeout if timeout is not None else None
    idle_polls = 0
    rechecks = _rechecks(listing)
    with track("archiving", len(listing.listed), unit="invoices") as tracker:
        while True:
            result = settle(listing.listed, where.table, started, rechecks)
            tracker.set_completed(result.settled)
            tracker.note(f"{len(result.failed)} failed" if result.failed else "")
            if not result.pending or (deadline is not None and time.monotonic() >= deadline):
                break
            # An empty queue twice in a row: what is still pending is in the DLQ (or lost); stop waiting.
            idle_polls = idle_polls + 1 if dlq.depth(clients.sqs(), where.queue_url) == 0 else 0
            if idle_polls >= 2:
                break
            time.sleep(POLL_SECONDS)
    _mark_dead_letters(result, where)
    return result


def _mark_dead_letters(result: Settlement, where: target.Target) -> None:
    if not result.pending or not where.dead_letter_queue_url:
        return
    dead = {letter.invoice for letter in dlq.peek(clients.sqs(), where.dead_letter_queue_url)}
    result.pending = [
        (invoice, f"in the DLQ; last ledger state {reason}" if invoice in dead else reason)
        for invoice, reason in result.pending
    ]


def _print_result(result: Settlement, listed: int, api: ApiCounters | None = None) -> None:
    print(f"Backfill: {listed} invoices listed")
    rows: list[tuple[str, object]] = [
        ("archived now", len(result.archived)),
        ("re-checked", len(result.rechecked)),
        ("already archived", len(result.already)),
        ("failed", len(result.failed)),
        ("not settled", len(result.pending)),
        ("documents archived", result.documents),
        ("bytes archived", result.bytes),
    ]
    if api is not None:  # the fetcher ran here: what the SDK absorbed is known
        rows += [
            ("throttled (429)", api.describe(api.throttled)),
            ("server errors (5xx)", api.describe(api.server_errors)),
            ("SDK retries", api.describe(api.retries)),
        ]
    for label, value in rows:
        print(f"  {label:<22}{value:>10}")
    for invoice, reason in [*result.failed, *result.pending][:20]:
        print(f"  ! {invoice.account_id} {invoice.period} {invoice.invoice_id}: {reason}")


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from None
