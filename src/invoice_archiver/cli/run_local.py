"""`invoice-archiver run-local`: the whole pipeline on the local sandbox, or on any endpoints.

Without endpoint variables it starts its own sandbox (moto's server and the Invoicing emulator).
With AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> set it uses those instead, so a second run
against the same endpoints finds everything archived and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from invoice_archiver.cli import resources
from invoice_archiver.cli.arguments import billing_period
from invoice_archiver.cli.pipeline import PassReport, run_pass, scheduled_event
from invoice_archiver.config import ConfigError, Settings, load_settings
from invoice_archiver.dal import clients
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.observability import logger

LOCAL_DEFAULTS = {
    "ARCHIVE_BUCKET": "invoice-archive-local",
    "LEDGER_TABLE": "invoice-archiver-ledger-local",
    "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "InvoiceArchiver",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
LOCAL_QUEUE_NAME = "invoice-archiver-invoices-local"


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
    parser.add_argument("--out", type=Path, help="copy the archive into this folder")
    parser.add_argument("--workers", type=int, default=4, help="concurrent fetchers (default 4)")
    parser.add_argument("--passes", type=int, default=1, help="run the pipeline this many times (default 1)")
    parser.add_argument("--log-file", type=Path, default=Path(".local/run-local.log"), help="function logs")
    parser.add_argument("--dataset", type=Path, help="JSON scenario for the sandbox's Invoicing emulator")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1 or args.passes < 1:
        print("error: --workers and --passes must be at least 1", file=sys.stderr)
        return 2
    from invoice_archiver.sandbox.runner import Sandbox

    dataset = _dataset(args)
    with Sandbox(dataset=dataset, moto_in_process=False) as sandbox:
        own_invoicing = sandbox.emulator is not None
        for name, value in LOCAL_DEFAULTS.items():
            os.environ.setdefault(name, value)
        if own_invoicing and not os.environ.get("ACCOUNT_IDS"):
            os.environ["ACCOUNT_IDS"] = ",".join(sandbox.dataset.accounts)
        clients.reset()
        try:
            settings = _provision()
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        _print_intro(sandbox, settings, own_invoicing)
        reports = []
        for number in range(1, args.passes + 1):
            event = _event(args.period)
            with _logs_to(args.log_file):
                report = run_pass(event, settings, workers=args.workers)
            reports.append(report)
            _print_report(number, report)
        keys = _archive_keys(settings, reports[-1])
        _print_tree(settings, keys)
        if args.out:
            copied = copy_archive(settings, keys, args.out)
            print(f"\nCopied {copied} objects into {args.out.resolve()}")
        print(f"\nFunction logs: {args.log_file}")
        clean = all(r.failed == 0 and r.unresolved == 0 and r.quarantined == 0 for r in reports)
    return 0 if clean else 1


def _dataset(args: argparse.Namespace) -> Any:
    from invoice_archiver.sandbox.dataset import Dataset, default_dataset

    return Dataset.load(args.dataset) if args.dataset else default_dataset()


def _provision() -> Settings:
    """Create the bucket, table, queue and DLQ named by the configuration, when missing."""
    settings = load_settings()
    resources.ensure_bucket(settings.archive_bucket)
    resources.ensure_table(settings.ledger_table)
    if not os.environ.get("INVOICE_QUEUE_URL"):
        queue_url, dlq_url = resources.ensure_queues(LOCAL_QUEUE_NAME)
        os.environ["INVOICE_QUEUE_URL"] = queue_url
        os.environ.setdefault("DEAD_LETTER_QUEUE_URL", dlq_url)
    settings = load_settings()
    load_settings(function="lister")
    load_settings(function="fetcher")
    return settings


def _event(period: BillingPeriod | None) -> dict[str, Any]:
    if period is None:
        return scheduled_event(datetime.now(UTC))
    return {"billing_periods": [str(period)]}


@contextlib.contextmanager
def _logs_to(path: Path) -> Iterator[IO[str]]:
    """Send the functions' JSON logs and EMF metrics to a file, keeping the terminal for the report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logger.registered_handler
    with path.open("a", encoding="utf-8") as stream, contextlib.redirect_stdout(stream):
        previous = handler.setStream(stream) if isinstance(handler, logging.StreamHandler) else None
        try:
            yield stream
        finally:
            if isinstance(handler, logging.StreamHandler) and previous is not None:
                handler.setStream(previous)


def _print_intro(sandbox: Any, settings: Settings, own_invoicing: bool) -> None:
    where = "its own sandbox" if own_invoicing else "the endpoints in AWS_ENDPOINT_URL*"
    print(f"invoice-archiver run-local, on {where}")
    for name, value in sorted(sandbox.env.items()):
        if name.startswith("AWS_ENDPOINT_URL"):
            print(f"  {name}={value}")
    print(f"  bucket {settings.archive_bucket}, ledger {settings.ledger_table}")
    if own_invoicing:
        print(f"  dataset: {sandbox.dataset.describe()}")


def _print_report(number: int, report: PassReport) -> None:
    print(
        f"\nPass {number}: periods {', '.join(report.periods) or '-'}; accounts {', '.join(report.accounts)}"
    )
    print(f"  invoices listed      {report.listed:>8}")
    print(f"  archived now         {report.archived:>8}")
    print(f"  skipped (had them)   {report.skipped:>8}")
    print(f"  failed               {report.failed:>8}")
    print(f"  unresolved           {report.unresolved:>8}")
    print(f"  quarantined (DLQ)    {report.quarantined:>8}")
    print(f"  documents archived   {report.documents:>8}")
    print(f"  bytes archived       {report.bytes:>8}")
    print(f"  time                 {report.seconds:>7.1f}s  ({report.invoices_per_second:.1f} invoices/s)")
    if report.archived == 0 and report.skipped and not report.failed:
        print("  Nothing new: every listed invoice was already archived.")
    for invoice_id, error in report.failures[:10]:
        print(f"  ! {invoice_id}: {error}")


def _archive_keys(settings: Settings, report: PassReport) -> list[tuple[str, int]]:
    """(key, size) of every archive object of the pass's accounts and periods."""
    paginator = clients.s3().get_paginator("list_objects_v2")
    keys = []
    for account in report.accounts:
        for period in report.periods or [""]:
            prefix = f"{settings.archive_prefix}/account={account}/" + (f"period={period}/" if period else "")
            for page in paginator.paginate(Bucket=settings.archive_bucket, Prefix=prefix):
                keys += [(obj["Key"], int(obj["Size"])) for obj in page.get("Contents", [])]
    return keys


def _print_tree(settings: Settings, keys: list[tuple[str, int]], invoices_shown: int = 2) -> None:
    print(f"\nArchive tree (s3://{settings.archive_bucket}/{settings.archive_prefix}/):")
    folders: dict[str, list[tuple[str, int]]] = {}
    for key, size in keys:
        folder, _, name = key.rpartition("/")
        folders.setdefault(folder, []).append((name, size))
    by_parent: dict[str, list[str]] = {}
    for folder in sorted(folders):
        by_parent.setdefault(folder.rpartition("/")[0], []).append(folder)
    for parent, children in by_parent.items():
        print(f"  {parent.removeprefix(settings.archive_prefix + '/')}/  ({len(children)} invoices)")
        for folder in children[:invoices_shown]:
            print(f"    {folder.rpartition('/')[2]}/")
            for name, size in sorted(folders[folder]):
                print(f"      {name:<48} {size:>10} bytes")
        if len(children) > invoices_shown:
            print(f"    ... {len(children) - invoices_shown} more invoices")


def copy_archive(settings: Settings, keys: list[tuple[str, int]], out: Path) -> int:
    """Copy archive objects under `out`, refusing any key that would land outside it."""
    root = out.resolve()
    root.mkdir(parents=True, exist_ok=True)
    s3 = clients.s3()
    targets = []
    for key, _ in keys:
        target = (root / key).resolve()
        if not target.is_relative_to(root) or target == root:
            raise ValueError(f"refusing to write outside {root}: key {key!r}")
        targets.append((key, target))

    def copy(key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        body = s3.get_object(Bucket=settings.archive_bucket, Key=key)["Body"]
        with target.open("wb") as handle:
            shutil.copyfileobj(body, handle, 1024 * 1024)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(copy, key, target) for key, target in targets]:
            future.result()
    return len(targets)
