"""`invoice-archiver run-local`: the whole pipeline on the local sandbox, or on any endpoints.

Without endpoint variables it starts its own sandbox (moto's server and the Invoicing emulator; needs
the [local] extra). With AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> set (the lines `invoice-archiver
sandbox` prints, ACCOUNT_IDS included) it uses those instead, so a second run against the same
endpoints finds everything archived and says so.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from invoice_archiver.cli import archive_tree, local
from invoice_archiver.cli.arguments import at_least, billing_period
from invoice_archiver.cli.errors import OK, PROBLEMS, CliError
from invoice_archiver.cli.progress import track
from invoice_archiver.cli.wording import count
from invoice_archiver.config import Settings
from invoice_archiver.dal import archived_summaries
from invoice_archiver.local.pipeline import PassReport, run_pass, scheduled_event
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.sandbox.command import load_dataset, sandbox_class

DEFAULT_LOG = Path(".local/run-local.log")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run-local",
        help="run the whole pipeline on the local sandbox (or the endpoints in AWS_ENDPOINT_URL*)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--period", type=billing_period, help="billing period YYYY-MM (default: what the schedule picks)"
    )
    parser.add_argument(
        "--out", metavar="DIR", help="copy the complete invoices into this folder (created if missing)"
    )
    parser.add_argument("--workers", type=at_least(1), default=4, help="concurrent fetchers (default 4)")
    parser.add_argument(
        "--passes", type=at_least(1), default=1, help="run the pipeline this many times (default 1)"
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        help=f"the functions' JSON logs, one file per run, created when something is logged (the previous "
        f"run's kept as .1; default {DEFAULT_LOG}, skipped with a warning if it cannot be written)",
    )
    parser.add_argument("--dataset", type=Path, help="JSON scenario for the sandbox's Invoicing emulator")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Every argument is checked before anything starts or is written.
    out = archive_tree.check_out_folder(args.out)
    if args.log_file is not None:
        local.check_log_file(args.log_file)
    log = local.FunctionLog(args.log_file or DEFAULT_LOG)
    own_invoicing = "AWS_ENDPOINT_URL_INVOICING" not in os.environ
    dataset = load_dataset(args.dataset) if args.dataset and own_invoicing else None
    if args.dataset and not own_invoicing:
        raise CliError("--dataset is for run-local's own sandbox; AWS_ENDPOINT_URL_INVOICING is already set")
    sandbox = sandbox_class()

    with sandbox(dataset=dataset, moto_in_process=False) as box:
        local.apply_defaults()
        if box.emulator is not None and not os.environ.get("ACCOUNT_IDS"):
            os.environ["ACCOUNT_IDS"] = ",".join(box.dataset.accounts)
        settings = local.provision()
        _print_intro(box, settings)
        reports = []
        for number in range(1, args.passes + 1):
            with track(f"pass {number}", unit="invoices") as tracker, local.logs_to(log):
                report = run_pass(_event(args.period), settings, workers=args.workers, tracker=tracker)
            reports.append(report)
            _print_report(number, report, box)
        prefixes = _prefixes(settings, reports[-1])
        listing = archived_summaries.group(archived_summaries.list_keys(settings.archive_bucket, prefixes))
        archive_tree.print_tree(settings.archive_bucket, settings.archive_prefix, listing)
        if out is not None:
            copied = archive_tree.copy_archive(settings.archive_bucket, listing.complete_keys, out)
            invoices = count(len(listing.complete), "invoice")
            print(f"\nCopied {count(copied, 'object')} of {invoices} into {out.resolve()}")
        print(f"\n{log.describe()}")
    return OK if all(r.clean for r in reports) else PROBLEMS


def _event(period: BillingPeriod | None) -> dict[str, Any]:
    if period is None:
        return scheduled_event(datetime.now(UTC))
    return {"billing_periods": [str(period)]}


def _print_intro(box: Any, settings: Settings) -> None:
    where = "its own sandbox" if box.emulator is not None else "the endpoints in AWS_ENDPOINT_URL*"
    print(f"invoice-archiver run-local, on {where}")
    for name, value in sorted(box.env.items()):
        if name.startswith("AWS_ENDPOINT_URL"):
            print(f"  {name}={value}")
    print(f"  bucket {settings.archive_bucket}, ledger {settings.ledger_table}")
    sources = [*settings.account_ids, *(str(s) for s in settings.source_role_arns)]
    if settings.discover_invoice_units:
        sources.append("(and their invoice units' receivers)")
    print(f"  accounts {', '.join(sources) or '(the caller account)'}")
    if box.emulator is not None:
        print(f"  dataset: {box.dataset.describe()}")


def _print_report(number: int, report: PassReport, box: Any) -> None:
    print(
        f"\nPass {number}: periods {', '.join(report.periods) or '-'}; accounts {', '.join(report.accounts)}"
    )
    rows = [
        ("invoices listed", report.listed),
        ("archived now", report.archived),
        ("skipped (had them)", report.skipped),
        ("failed", report.failed),
        ("unresolved", report.unresolved),
        ("quarantined (DLQ)", report.quarantined),
        ("documents archived", report.documents),
        ("bytes archived", report.bytes),
    ]
    for label, value in rows:
        print(f"  {label:<22}{value:>10}")
    api = report.api
    redelivered = report.drain.failures if report.drain is not None else 0
    print(f"  {'throttled (429)':<22}{api.describe(api.throttled):>10}")
    print(f"  {'server errors (5xx)':<22}{api.describe(api.server_errors):>10}")
    print(f"  {'SDK retries':<22}{api.describe(api.retries):>10}")
    print(f"  {'redelivered records':<22}{redelivered:>10}")
    print(f"  {'time':<22}{report.seconds:>9.1f}s  ({report.invoices_per_second:.1f} invoices/s)")
    if report.listed == 0:
        print(f"  Nothing listed: {report.nothing_listed_because}.")
        if box.emulator is not None:
            print(f"  The sandbox's dataset holds: {box.dataset.describe()}.")
    elif report.archived == 0 and report.skipped and not report.failed:
        print("  Nothing new: every listed invoice was already archived.")
    for account, reason in sorted(report.failed_sources.items()):
        print(f"  ! source {account} cannot be read, skipped: {reason}")
    for invoice_id, error in report.failures[:10]:
        print(f"  ! {invoice_id}: {error}")
    if len(report.failures) > 10:
        print(f"  ! ... {len(report.failures) - 10} more; see `invoice-archiver status`")


def _prefixes(settings: Settings, report: PassReport) -> list[str]:
    return [
        f"{settings.archive_prefix}/account={account}/" + (f"period={period}/" if period else "")
        for account in report.accounts
        for period in report.periods or [""]
    ]
