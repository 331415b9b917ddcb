"""`invoice-archiver reconcile`: the archive against AWS's own cost data (CUR 2.0 or FOCUS 1.2 export).

Reads the billing period's Data Exports export (s3://bucket/prefix/ or a local folder with the same
layout: <export>/data/BILLING_PERIOD=YYYY-MM/...parquet or .csv.gz; a prefix above the export is
searched), streamed, and the archive's latest summaries of the period; sums the export's lines per
invoice and currency, and compares each with its archived invoice: the total, the tax and the amount
before tax. Each invoice is matched (within the tolerance), amounts_differ (both figures and the
difference), not_archived (in the cost data, not in the archive: the alarm case), not_in_cost_data
(archived, with the reason when it can be told) or currency_differs; lines without an invoice id are
not_final or no_invoice. Credit memos are shown after the invoice they credit. A summary per period,
account, invoicing entity and currency ends the report. See docs/reconciliation.md.

Exit 0 when everything reconciles, 1 when something does not (or the export is not final yet), 2 for a
usage error: a missing folder, no export for the period, an unreadable file, a wrong --format.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from botocore.exceptions import ClientError

from invoice_archiver.cli import inventory, output_file, reconcile_output, target
from invoice_archiver.cli.arguments import billing_period
from invoice_archiver.cli.errors import OK, PROBLEMS, CliError
from invoice_archiver.cli.progress import Tracker, track
from invoice_archiver.config import ConfigError, load_settings
from invoice_archiver.dal import clients


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "reconcile",
        help="compare the archive with AWS's cost data (a CUR 2.0 or FOCUS 1.2 export) for a period",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--period", type=billing_period, required=True, help="billing period YYYY-MM")
    parser.add_argument(
        "--cost-data",
        metavar="LOCATION",
        help="s3://bucket/prefix/ or a local folder (default: COST_DATA_EXPORT, as the reconciler function)",
    )
    parser.add_argument(
        "--format", choices=("cur2", "focus"), help="the export's format (default: told by its columns)"
    )
    parser.add_argument(
        "--output", metavar="FILE", help="also write the whole result here: FILE.csv or FILE.json"
    )
    parser.add_argument("--force", action="store_true", help="with --output: replace an existing file")
    parser.add_argument(
        "--tolerance",
        type=_amount,
        metavar="AMOUNT",
        help="largest difference still matched, in the invoice's currency "
        "(default: RECONCILIATION_TOLERANCE, "
        "else one unit of each invoice's last decimal place, 0.01 for USD)",
    )
    parser.add_argument(
        "--final-day",
        type=_day,
        default=10,
        metavar="DAY",
        help="last month's export is taken as final from this day of the month (default 10)",
    )
    target.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from invoice_archiver.logic import reconcile_job  # pyarrow: only when the command runs
    except ImportError as exc:
        raise CliError(
            f"reconcile needs the 'reconcile' extra (no module {exc.name!r}): "
            "pip install 'invoice-archiver[reconcile]'"
        ) from None
    output = reconcile_output.check_output(args.output, force=args.force)
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    cost_data = args.cost_data or settings.cost_data_export
    if not cost_data:
        raise CliError(
            "--cost-data is required: name s3://bucket/prefix/ or a folder (or set COST_DATA_EXPORT)"
        )
    where = target.resolve(args.stack, queues=False)
    request = reconcile_job.Request(
        period=args.period,
        cost_data=cost_data,
        now=datetime.now(UTC),
        export_format=_format(args.format),
        tolerance=args.tolerance if args.tolerance is not None else settings.reconciliation_tolerance,
        final_day=args.final_day,
    )
    scope = reconcile_job.ArchiveScope(
        where.bucket, where.prefix, where.table, tuple(target.archive_accounts(where))
    )
    s3 = inventory.reader(8)
    progress = reconcile_job.Progress()
    cost = _read_cost_data(request, s3, progress)
    with track("reading summaries", unit="invoices") as summaries:
        progress.on_summaries_listed, progress.on_summary_read = summaries.set_total, summaries.advance
        outcome = reconcile_job.reconcile(
            request, scope, s3=s3, dynamodb=clients.dynamodb(), progress=progress, cost=cost
        )
    if output is not None:
        path, form = output
        output_file.write_atomically(path, reconcile_output.render(outcome, form))
        progress.notes.append(f"the whole result is written to {path}")
    archive = f"s3://{where.bucket}/{where.prefix}/"
    sys.stdout.write(reconcile_output.text_report(outcome, archive=archive, notes=progress.notes))
    return PROBLEMS if outcome.problems else OK


def _read_cost_data(request: Any, s3: Any, progress: Any) -> Any:
    from invoice_archiver.dal.cost_export import ExportNotFound
    from invoice_archiver.dal.cost_reader import ExportUnreadable
    from invoice_archiver.logic import reconcile_job

    with track("reading cost data", unit="lines") as lines:
        progress.on_files = lambda names: lines.note(f"{len(names)} file(s)")
        progress.on_cost_batch = _counter(lines)
        try:
            return reconcile_job.read_cost_data(request, s3, progress)
        except (ExportNotFound, ExportUnreadable) as exc:
            raise CliError(f"--cost-data: {exc}") from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchBucket", "NoSuchKey"):
                raise CliError(
                    f"--cost-data {request.cost_data}: {code} (check the bucket and prefix)"
                ) from None
            raise


def _counter(tracker: Tracker) -> Any:
    def advance(name: str, rows: int) -> None:
        tracker.advance(rows)
        tracker.note(name.rpartition("/")[2])

    return advance


def _format(text: str | None) -> Any:
    from invoice_archiver.models.cost import ExportFormat

    return None if text is None else ExportFormat(text)


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount such as 0.05") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: name an amount of zero or more, such as 0.05")
    return value


def _day(text: str) -> int:
    try:
        day = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day of the month") from None
    if not 1 <= day <= 28:
        raise argparse.ArgumentTypeError(f"{text}: name a day from 1 to 28")
    return day
