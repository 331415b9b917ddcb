"""`invoice-archiver backfill`: archive a range of billing periods, an issue-date range, or named invoices.

The listing is the lister's: the command sends it an explicit request (the same the lister's event takes,
see the README), and it plans under the API's rules (checked before any call), lists each source through
its own credentials or role, compares with the ledger and enqueues. Then:

  --stack NAME        the stack's lister is invoked (lambda:InvokeFunction) and the stack's fetcher
                      archives; the command follows the ledger with a progress bar until every invoice
                      is settled (--no-wait: return once listed; --timeout: stop following after that
                      long, the stack keeps working)
  AWS_ENDPOINT_URL    (a sandbox) the real lister and fetcher run in this process, as run-local does

As on a schedule, only what is new, changed, not yet archived or due is enqueued. --recheck enqueues
every listed invoice, an archived one as a re-check (fresh URLs, new documents, a revision if anything
changed). --invoice-id re-archives: the fetcher takes each named invoice even if it is ARCHIVED and
fetches every document again; deleted objects are re-created, objects that still hold the same bytes are
kept, and an object replaced by different bytes is reported as a conflict. Nothing is ever overwritten.
An id no source lists is named, with exit 1.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from invoice_archiver.cli import follow, local, target
from invoice_archiver.cli.arguments import account_ids, at_least, check_begun, csv, day, now, seconds
from invoice_archiver.cli.errors import OK, PROBLEMS, CliError
from invoice_archiver.cli.listing_call import Listing, list_here, list_on_stack
from invoice_archiver.cli.progress import track
from invoice_archiver.cli.settle import Settlement
from invoice_archiver.cli.wording import count
from invoice_archiver.local.api_counters import COUNTERS, ApiCounters
from invoice_archiver.local.pipeline import drain_queue, why_nothing_listed
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.requests import ListRequest

DEFAULT_LOG = Path(".local/backfill.log")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "backfill",
        help="archive a range of periods, an issue-date range or named invoices, with progress",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_argument_group("what to archive: a period range, an issue-date range (or both), or ids")
    what.add_argument("--from", dest="from_period", metavar="YYYY-MM", help="first billing period")
    what.add_argument("--to", dest="to_period", metavar="YYYY-MM", help="last billing period (inclusive)")
    what.add_argument("--issued-from", type=day, metavar="YYYY-MM-DD", help="first issue date")
    what.add_argument("--issued-to", type=day, metavar="YYYY-MM-DD", help="issue dates before this one")
    what.add_argument(
        "--invoice-id", nargs="+", metavar="ID", help="re-archive these invoices (alone: no range)"
    )
    parser.add_argument(
        "--recheck", action="store_true", help="re-check archived invoices too (new documents, revisions)"
    )
    parser.add_argument(
        "--accounts", type=account_ids, help="comma-separated account ids, among the configured sources"
    )
    parser.add_argument("--roles", type=csv, help="comma-separated receiver roles: SELLER,RESELLER,BUYER")
    target.add_arguments(parser)
    on_stack = parser.add_argument_group("with --stack")
    on_stack.add_argument("--no-wait", action="store_true", help="return once listed and enqueued")
    on_stack.add_argument("--timeout", type=seconds, metavar="SECONDS", help="stop following after this long")
    here = parser.add_argument_group("on a sandbox's endpoints (no --stack)")
    here.add_argument("--workers", type=at_least(1), help="fetchers in this process (default 4)")
    here.add_argument(
        "--log-file",
        type=Path,
        help=f"the functions' JSON logs, created when something is logged (default {DEFAULT_LOG})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    request = _request(args)
    if not args.stack and not local.has_endpoints():
        raise CliError(
            "name where to archive: --stack NAME (a deployed stack), or export the lines of a running "
            "`invoice-archiver sandbox` (AWS_ENDPOINT_URL...) to run the lister and fetcher here"
        )
    if args.stack:
        for flag, given in (("--workers", args.workers), ("--log-file", args.log_file)):
            if given is not None:
                raise CliError(
                    f"{flag} is for a backfill on a sandbox's endpoints; the stack's functions run on it"
                )
        if args.no_wait and args.timeout is not None:
            raise CliError("--no-wait and --timeout exclude each other")
        return _on_stack(args, request)
    for flag, given in (("--no-wait", args.no_wait), ("--timeout", args.timeout is not None)):
        if given:
            raise CliError(
                f"{flag} is for a backfill on a stack (--stack NAME); here the command does the work"
            )
    if args.log_file is not None:
        local.check_log_file(args.log_file)
    return _on_endpoints(args, request)


def _request(args: argparse.Namespace) -> ListRequest:
    """The lister's request, checked here first so that a mistake is one line before anything runs."""
    if args.invoice_id:
        ranges = [flag for flag, value in _range_flags(args) if value is not None]
        if ranges:
            raise CliError(f"--invoice-id names invoices; it goes alone, without {' or '.join(ranges)}")
        if args.recheck:
            raise CliError(
                "--invoice-id re-archives (every document is fetched again); --recheck adds nothing"
            )
    for flag in ("from_period", "to_period"):
        text = getattr(args, flag)
        if text is not None:
            _begun(text, "--from" if flag == "from_period" else "--to")
    if args.issued_from is not None and args.issued_from > now().date():
        raise CliError(f"--issued-from {args.issued_from} is after today: no invoice is issued yet")
    fields = {
        "from_period": args.from_period,
        "to_period": args.to_period,
        "issued_from": args.issued_from,
        "issued_to": args.issued_to,
        "invoice_ids": tuple(args.invoice_id or ()),
        "accounts": tuple(args.accounts) if args.accounts else None,
        "receiver_roles": tuple(r.upper() for r in args.roles) if args.roles is not None else None,
        "recheck": args.recheck,
        "rearchive": bool(args.invoice_id),
        "report_enqueued": True,
    }
    try:
        request = ListRequest(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        flags = message.replace("from_period", "--from").replace("to_period", "--to")
        flags = flags.replace("issued_from", "--issued-from").replace("issued_to", "--issued-to")
        flags = flags.replace("billing_periods, ", "").replace("invoice_ids", "--invoice-id")
        raise CliError(flags) from None
    first, last = request.from_period, request.to_period
    if first and last and BillingPeriod.parse(last) < BillingPeriod.parse(first):
        raise CliError(f"--to {last} is before --from {first} (both are included)")
    return request


def _range_flags(args: argparse.Namespace) -> list[tuple[str, object]]:
    return [
        ("--from", args.from_period),
        ("--to", args.to_period),
        ("--issued-from", args.issued_from),
        ("--issued-to", args.issued_to),
    ]


def _begun(text: str, flag: str) -> None:
    try:
        check_begun(BillingPeriod.parse(text))
    except argparse.ArgumentTypeError as exc:
        raise CliError(f"{flag} {exc}") from None
    except ValueError:
        return  # not a period at all: the request's own check names it


def _event(request: ListRequest) -> dict[str, Any]:
    event: dict[str, Any] = request.model_dump(mode="json", exclude_defaults=True)
    return event


def _on_endpoints(args: argparse.Namespace, request: ListRequest) -> int:
    log = local.FunctionLog(args.log_file or DEFAULT_LOG)
    local.apply_defaults()
    settings = local.provision()
    where = target.resolve(None)
    print(f"invoice-archiver backfill on {where.describe()}; the lister and fetcher run in this process")
    before = COUNTERS.snapshot()
    started = datetime.now(UTC)
    with track("listing", unit="queries") as tracker:
        listing = list_here(_event(request), settings.listing_queue_url, log, tracker)
    _print_listing(request, listing, where, started)
    if not listing.sent and listing.followable:  # nothing to archive: the listing said it all
        print(log.describe())
        return PROBLEMS if _listing_trouble(request, listing) else OK
    if listing.sent:
        expected = len(listing.enqueued) if listing.complete else listing.sent
        with track("archiving", expected, unit="invoices") as tracker, local.logs_to(log):
            drain_queue(where.queue_url, args.workers or 4, tracker, expected)
    result = follow.where_they_stand(listing, where, started)
    follow.mark_dead_letters(result, where)
    code = _print_result(request, listing, result, COUNTERS.since(before))
    print(log.describe())
    return code


def _on_stack(args: argparse.Namespace, request: ListRequest) -> int:
    where = target.resolve(args.stack)
    print(f"invoice-archiver backfill on {where.describe()}; the stack's lister lists, its fetcher archives")
    if where.unreadable:  # the listing queue is then unknown: a continued listing is followed less surely
        print(f"invoice-archiver: warning: {where.unreadable}", file=sys.stderr)
    started = datetime.now(UTC)
    with track("listing (the stack's lister)", unit="queries") as tracker:
        listing = list_on_stack(where, _event(request), tracker)
    _print_listing(request, listing, where, started)
    if args.no_wait or (not listing.sent and listing.followable):
        if listing.sent:
            print(f"Not waiting; follow with: invoice-archiver status --stack {args.stack}")
        return PROBLEMS if _listing_trouble(request, listing) else OK
    try:
        followed = follow.follow(listing, where, started, args.timeout)
    except KeyboardInterrupt:
        print(_stopped(args.stack, "on Ctrl-C"))
        raise
    code = _print_result(request, listing, followed.result)
    if followed.timed_out:
        print(_stopped(args.stack, f"after --timeout {args.timeout:g} s"))
        return PROBLEMS
    return code


def _stopped(stack: str, why: str) -> str:
    return (
        f"Stopped following {why}; the stack keeps working on what is queued: "
        f"invoice-archiver status --stack {stack}"
    )


def _print_listing(request: ListRequest, listing: Listing, where: target.Target, started: datetime) -> None:
    unchanged = f" ({listing.unchanged} archived and unchanged)" if listing.unchanged else ""
    print(
        f"Listed {count(listing.listed, 'invoice')} with {count(listing.queries, 'query', 'queries')}; "
        f"enqueued {listing.sent}{unchanged}"
    )
    if listing.continued:
        print(
            "The listing continues through the stack's listing queue (it outgrew one invocation); "
            "the invoices of its later pieces are followed in the ledger"
        )
    elif not listing.complete:
        print("The lister could not name every invoice it enqueued in one response; following the ledger")
    if not listing.listed and not request.invoice_ids:
        roles = request.receiver_roles if request.receiver_roles is not None else where.roles
        why = why_nothing_listed(sorted(listing.periods), sorted(listing.accounts), roles, started)
        print(f"Nothing listed: {why}.")
    for account, reason in sorted(listing.failed_sources.items()):
        print(f"! Source {account} cannot be read, skipped: {reason}")
    if listing.quarantined:
        summaries = count(listing.quarantined, "summary", "summaries")
        print(f"! {summaries} could not become a message; in the DLQ with the reason")
    for invoice_id in _unknown_ids(request, listing):
        print(f"! not found: {invoice_id}: no source of this archive lists it (check the id and ACCOUNT_IDS)")


def _unknown_ids(request: ListRequest, listing: Listing) -> list[str]:
    if not request.invoice_ids or not listing.followable:
        return []
    found = {invoice.invoice_id for invoice in listing.enqueued}
    return [invoice_id for invoice_id in dict.fromkeys(request.invoice_ids) if invoice_id not in found]


def _print_result(
    request: ListRequest, listing: Listing, result: Settlement, api: ApiCounters | None = None
) -> int:
    if listing.followable:
        print(f"Backfill: {count(listing.listed, 'invoice')} listed")
    else:
        print(f"Backfill: {count(listing.listed, 'invoice')} listed so far; the counts are from the ledger")
    rows: list[tuple[str, object]] = [
        ("archived now", len(result.archived)),
        ("re-checked", len(result.rechecked)),
        ("already archived", listing.unchanged + len(result.already)),
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
    problems = [*result.failed, *result.pending]
    for invoice, reason in problems[:20]:
        print(f"  ! {invoice.account_id} {invoice.period} {invoice.invoice_id}: {reason}")
    if len(problems) > 20:
        print(f"  ! ... {len(problems) - 20} more; see `invoice-archiver status`")
    return PROBLEMS if _listing_trouble(request, listing) or not result.clean else OK


def _listing_trouble(request: ListRequest, listing: Listing) -> bool:
    """An id no source lists, a source that cannot be read, a summary that cannot become a message."""
    return bool(_unknown_ids(request, listing) or listing.failed_sources or listing.quarantined)
