"""`invoice-archiver report`: the finance manifest of one billing period, from the archive itself.

One row per complete invoice, from its latest summary (summary.json, or the newest revision written
when AWS changed the invoice; folders without summary.json are left out and counted on stderr):
account, invoice id, type, original invoice (credit memos), entities, receiver role, bill type, dates,
purchase order, the amounts in base, tax and payment currency exactly as the API's decimal strings
(total, before tax, subtotal, taxes, discounts, fees, with currency codes and exchange rates),
e-invoice and tax-authority status, and the document keys. Totals per currency close the file, as
Decimal sums. `--format jsonl` writes each latest summary as one line, for the Athena table in
docs/athena/summary_table.sql.

--output writes a regular file, whole or not at all; an existing file is replaced only with --force, and a
symbolic link, FIFO or device is never written through. A report that matches no complete invoice writes
nothing, says so and exits 1.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from typing import Any

from invoice_archiver.cli import inventory, manifest, output_file, target
from invoice_archiver.cli.arguments import account_id, billing_period
from invoice_archiver.cli.errors import OK, PROBLEMS
from invoice_archiver.cli.progress import track
from invoice_archiver.cli.wording import count
from invoice_archiver.dal import archived_summaries, clients
from invoice_archiver.logic.layout import SUMMARY_FILE
from invoice_archiver.models.period import BillingPeriod

FORMATS = ("csv", "json", "jsonl")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "report",
        help="the finance manifest of a billing period: one row per invoice, totals per currency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--period", type=billing_period, required=True, help="billing period YYYY-MM")
    parser.add_argument("--account", action="append", type=account_id, help="only this account (repeatable)")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="csv (default), json or jsonl")
    parser.add_argument("--output", metavar="FILE", help="write here instead of stdout (a new regular file)")
    parser.add_argument("--force", action="store_true", help="with --output: replace an existing file")
    target.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    output = output_file.checked(args.output, force=args.force)
    where = target.resolve(args.stack, queues=False)
    accounts = list(dict.fromkeys(args.account or _accounts(where)))
    prefixes = [f"{where.prefix}/account={a}/period={args.period}/" for a in accounts]
    listing = archived_summaries.group(archived_summaries.list_keys(where.bucket, prefixes))
    summary_keys = [listing.latest_summary(folder) for folder in sorted(listing.complete)]
    documents = _read(where.bucket, summary_keys)
    documents.sort(key=lambda pair: (pair[1].get("account_id", ""), pair[1].get("invoice_id", "")))
    scope = f"from s3://{where.bucket}/{where.prefix}/ (accounts {', '.join(accounts) or 'none'})"
    if listing.incomplete:
        print(
            f"Left out: {count(len(listing.incomplete), 'invoice folder')} without {SUMMARY_FILE} (not "
            "complete); see `invoice-archiver status`",
            file=sys.stderr,
        )
    if not documents:
        print(f"Report {args.period}: no complete invoice {scope}; nothing written", file=sys.stderr)
        return PROBLEMS
    text = _render(args.format, args.period, documents)
    if output is None:
        sys.stdout.write(text)
    else:
        output_file.write_atomically(output, text)
    where_to = f"written to {output}" if output else "on stdout"
    print(f"Report {args.period}: {count(len(documents), 'invoice')} {scope}, {where_to}", file=sys.stderr)
    return OK


def _accounts(where: target.Target) -> list[str]:
    """The accounts that have an archive folder, and the archive's accounts even if still empty (ACCOUNT_IDS,
    SOURCE_ROLE_ARNS, and with DISCOVER_INVOICE_UNITS those in the ledger)."""
    found = archived_summaries.account_folders(where.bucket, where.prefix, clients.s3())
    return sorted({*found, *target.archive_accounts(where)})


def _read(bucket: str, keys: list[str]) -> list[tuple[str, dict[str, Any]]]:
    with track("reading summaries", len(keys), unit="invoices") as tracker:
        return archived_summaries.read_documents(inventory.reader(8), bucket, keys, on_read=tracker.advance)


def _render(form: str, period: BillingPeriod, documents: list[tuple[str, dict[str, Any]]]) -> str:
    if form == "jsonl":
        return "".join(json.dumps(doc, sort_keys=True, ensure_ascii=False) + "\n" for _, doc in documents)
    rows = [manifest.row(key, doc) for key, doc in documents]
    totals = manifest.Totals()
    for invoice in rows:
        totals.add(invoice)
    if form == "json":
        body = {"billing_period": str(period), "invoices": rows, "totals": totals.as_json()}
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=manifest.COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    writer.writerows(totals.rows())
    return buffer.getvalue()
