"""`invoice-archiver verify`: read every archived object back and prove it is what the ledger recorded.

Each object is streamed (memory stays flat whatever its size), in parallel, and its SHA-256 compared with
the ledger, with summary.json, with the SHA-256 checksum S3 stored when it was created, and with its
`sha256` metadata. It reports missing objects, bytes that differ, keys with extra versions (an
overwrite), invoice folders without summary.json and objects that belong to no invoice, each with its
key. Exit 0 when clean, 1 when there are problems, and 1 when there was nothing to verify (no archived
invoice for the accounts and period asked: a typo in --account or --period, or an archive still empty).

The accounts are those with objects in the archive and those of ACCOUNT_IDS and SOURCE_ROLE_ARNS (and with
DISCOVER_INVOICE_UNITS=true every account in the ledger), unless --account names some.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from invoice_archiver.cli import inventory, target
from invoice_archiver.cli.arguments import account_id, at_least, billing_period
from invoice_archiver.cli.errors import OK, PROBLEMS, named_resources
from invoice_archiver.cli.progress import track
from invoice_archiver.cli.verification import (
    Findings,
    Scope,
    check_invoice,
    objects_to_read,
    unexpected_objects,
    was_archived,
    with_documents,
)
from invoice_archiver.cli.wording import count
from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import invoices
from invoice_archiver.dal.ledger.records import InvoiceRecord
from invoice_archiver.logic.layout import parse_key
from invoice_archiver.models.period import BillingPeriod


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "verify",
        help="re-read every archived object and check it against the ledger, summary.json and S3",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target.add_arguments(parser)
    parser.add_argument("--account", action="append", type=account_id, help="only this account (repeatable)")
    parser.add_argument("--period", type=billing_period, help="only this billing period, YYYY-MM")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--workers", type=at_least(1), default=8, help="objects read in parallel (default 8)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    where = target.resolve(args.stack, queues=False)
    found = _histories(where.bucket, where.prefix, args.account, args.period)
    scope = Scope(where.bucket, where.prefix, found, args.workers)
    accounts = list(dict.fromkeys(args.account or [*_accounts_in(found), *target.archive_accounts(where)]))
    items = [with_documents(scope, item) for a in accounts for item in _ledger(where.table, a, args.period)]
    findings = Findings()
    unexpected_objects(scope, items, findings)
    archived = [item for item in items if was_archived(item)]
    findings.invoices = len(archived)
    total = sum(objects_to_read(scope, item) for item in archived)
    _check_all(scope, archived, findings, total)
    findings.problems.sort(key=lambda p: (p.key, p.kind))
    nothing = not findings.invoices and not findings.problems
    if args.json:
        print(json.dumps(_as_json(where, findings), indent=2))
    else:
        _print(where, findings)
    if nothing:
        asked = f"accounts {', '.join(accounts) or '(none)'}" + (f" in {args.period}" if args.period else "")
        print(
            f"Nothing to verify: no archived invoice for {asked} in s3://{where.bucket}/{where.prefix}/ "
            f"and ledger {where.table}",
            file=sys.stderr,
        )
    return PROBLEMS if findings.problems or nothing else OK


def _check_all(scope: Scope, archived: list[InvoiceRecord], findings: Findings, total: int) -> None:
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=scope.workers, thread_name_prefix="verify")
    with track("verifying", total, unit="objects") as tracker:

        def on_object(size: int) -> None:
            tracker.advance()
            tracker.note(f"{findings.bytes:,} bytes, {len(findings.problems)} problems")

        futures = [pool.submit(check_invoice, scope, item, findings, stop, on_object) for item in archived]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()  # the first error, if any (a bucket that vanished, credentials expired)
        finally:
            stop.set()  # after Ctrl-C or an error: the readers stop at their next chunk
            pool.shutdown(wait=True, cancel_futures=True)


def _histories(
    bucket: str, prefix: str, accounts: list[str] | None, period: BillingPeriod | None
) -> dict[str, inventory.KeyHistory]:
    base = f"{prefix}/"
    prefixes = [
        f"{base}account={a}/" + (f"period={period}/" if period else "") for a in dict.fromkeys(accounts or [])
    ] or [base]
    found: dict[str, inventory.KeyHistory] = {}
    with named_resources(bucket=bucket):
        for key_prefix in prefixes:
            found.update(inventory.histories(inventory.reader(8), bucket, key_prefix))
    if period is not None:
        found = {k: v for k, v in found.items() if (m := parse_key(k)) is None or m.period == str(period)}
    return found


def _accounts_in(found: dict[str, Any]) -> list[str]:
    return sorted({m.account_id for key in found if (m := parse_key(key)) is not None})


def _ledger(table: str, account: str, period: BillingPeriod | None) -> list[InvoiceRecord]:
    """The account's invoices in the ledger."""
    with named_resources(table=table):
        return list(invoices.query_period(clients.dynamodb(), table, account, period))


def _as_json(where: target.Target, findings: Findings) -> dict[str, Any]:
    return {
        "bucket": where.bucket,
        "prefix": where.prefix,
        "ledger": where.table,
        "invoices": findings.invoices,
        "objects": findings.objects,
        "bytes": findings.bytes,
        "s3_checksums_compared": findings.s3_checksums,
        "clean": not findings.problems,
        "problems": [p.as_dict() for p in findings.problems],
    }


def _print(where: target.Target, findings: Findings) -> None:
    print(
        f"Verified {count(findings.invoices, 'invoice')}: {count(findings.objects, 'object')}, "
        f"{findings.bytes:,} bytes read "
        f"from s3://{where.bucket}/{where.prefix}/ against ledger {where.table}; "
        f"S3 checksums compared: {findings.s3_checksums}"
    )
    if not findings.problems:
        if findings.invoices:
            print("No problems: every object matches the ledger, summary.json and S3's checksum.")
        return
    width = max(len(p.kind) for p in findings.problems)
    print(f"{count(len(findings.problems), 'problem')}:")
    for problem in findings.problems:
        print(f"  {problem.kind:<{width}}  {problem.key}  {problem.detail}")
