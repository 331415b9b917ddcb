"""Invoices per second of the local pipeline beside a plain sequential boto3 loop doing the same work.

Scenarios (each in a fresh child process with a fresh sandbox over the same generated dataset):

* ``baseline``: list with the paginator, GetInvoicePDF, download each document with urllib3,
  ``put_object`` each to S3, one ``put_item`` per invoice; sequential; no ledger claim, no checks.
* ``pipeline wN``: ``cli.pipeline.run_pass`` (real lister, SQS, event-source-mapping emulator with N
  workers, real fetcher: claim, GetInvoicePDF, download+hash+spool, create-only PutObject with
  checksums, summary.json, mark archived).

``inproc``: moto and the emulator run in the measured process (as in ``make demo``/the tests), sharing
its GIL. ``external``: both run in a separate ``python -m invoice_archiver.sandbox`` process, so the
measured process holds only the client side; the CPU seconds of both processes show how much of the
work is the sandbox.

    .venv/bin/python bench/throughput.py [--invoices 2000] [--workers 1,4,8]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import common

ACCOUNTS = ("123456789012", "210987654321")
PERIODS = ("2026-08", "2026-09")


def dataset_spec(invoices: int) -> dict[str, Any]:
    """A generated scenario of about `invoices` invoices: 2 accounts x 2 periods, 2-8 KB docs, 0-4 extra."""
    per = max(1, round(invoices / (len(ACCOUNTS) * len(PERIODS))))
    return {
        "format": "invoice-archiver-sandbox/1",
        "generate": {
            "seed": 2026,
            "accounts": list(ACCOUNTS),
            "periods": list(PERIODS),
            "invoices_per_account_period": per,
            "document_size": [2048, 8192],
            "supplemental": [0, 4],
        },
    }


# --- parent ----------------------------------------------------------------------------------------


def start_external_sandbox(
    dataset: Path, log: Path, options: list[str] | None = None
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``python -m invoice_archiver.sandbox --dataset ...`` in its own process; returns it and the
    endpoint variables."""
    process = subprocess.Popen(  # noqa: S603
        [common.PYTHON, "-m", "invoice_archiver.sandbox", "--dataset", str(dataset), *(options or [])],
        env=common.clean_env(),
        cwd=common.ROOT,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    assert process.stdout is not None
    env: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            env[name] = value
        if line.startswith("# sandbox ready"):
            return process, env
    common.stop_process(process)
    raise RuntimeError(f"the sandbox process exited early; see {log}")


def run_scenario(
    mode: str, workers: int, placement: str, dataset: Path, workdir: Path, timeout: float
) -> dict[str, Any]:
    name = f"{mode}-w{workers}-{placement}"
    args = ["--mode", mode, "--workers", str(workers), "--dataset", str(dataset)]
    args += ["--log-file", str(workdir / f"{name}.log")]
    if placement == "inproc":
        return dict(
            common.run_child("throughput.py", args, common.clean_env(), workdir / f"{name}.json", timeout)
        )
    process, endpoints = start_external_sandbox(dataset, workdir / f"{name}-sandbox.log")
    try:
        args += ["--sandbox-pid", str(process.pid)]
        env = common.clean_env(endpoints)
        return dict(common.run_child("throughput.py", args, env, workdir / f"{name}.json", timeout))
    finally:
        common.stop_process(process)


def scenarios(workers: list[int], inproc: bool = True, external: bool = True) -> list[tuple[str, int, str]]:
    """(mode, workers, placement) to run: the baseline and each worker count in process, then the
    baseline and the largest worker count with the sandbox in its own process."""
    chosen: list[tuple[str, int, str]] = []
    if inproc:
        chosen += [("baseline", 1, "inproc")] + [("pipeline", w, "inproc") for w in workers]
    if external:
        chosen += [("baseline", 1, "external"), ("pipeline", max(workers), "external")]
    return chosen


def run(invoices: int, chosen: list[tuple[str, int, str]], workdir: Path) -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    dataset = workdir / "dataset.json"
    dataset.write_text(json.dumps(dataset_spec(invoices)))
    results = []
    for mode, count, placement in chosen:
        started = time.monotonic()
        print(f"  running {mode} workers={count} sandbox={placement} ...", end="", flush=True)
        result = run_scenario(mode, count, placement, dataset, workdir, timeout=900)
        print(f" {result['seconds']:.1f}s ({time.monotonic() - started:.0f}s with setup)", flush=True)
        results.append(result)
    return results


# --- child -----------------------------------------------------------------------------------------


def _request_counts(sandbox: Any) -> dict[str, int]:
    counts: Counter[str] = Counter()
    if sandbox.moto is not None:
        for record in sandbox.moto.requests.records():
            counts[f"{record.service}:{record.operation or record.method}"] += 1
    if sandbox.emulator is not None:
        snapshot = sandbox.emulator.stats.snapshot()
        for operation, calls in snapshot["calls"].items():
            counts[f"invoicing:{operation}"] += calls
        counts["download:GET"] += int(snapshot["downloads"])
    return dict(sorted(counts.items()))


def _reset_counts(sandbox: Any) -> None:
    if sandbox.moto is not None:
        sandbox.moto.requests.reset()
    if sandbox.emulator is not None:
        sandbox.emulator.reset_stats()


@contextlib.contextmanager
def _timed_lister() -> Iterator[list[float]]:
    """Time the lister's part of `run_pass` (it looks `lister.handler` up at call time)."""
    from invoice_archiver.handlers import lister

    original = lister.handler
    seconds = [0.0]

    def timed(event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return dict(original(event, context))
        finally:
            seconds[0] += time.perf_counter() - started

    lister.handler = timed
    try:
        yield seconds
    finally:
        lister.handler = original


def _baseline(settings: Any, dataset: Any) -> dict[str, Any]:
    """The plain sequential loop: no ledger claims, no checks, no spool, no checksums of our own."""
    import boto3
    import urllib3

    from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY

    invoicing = boto3.client("invoicing", region_name="us-east-1")
    s3 = boto3.client("s3")
    dynamodb = boto3.client("dynamodb")
    http = urllib3.PoolManager()
    paginator = invoicing.get_paginator("list_invoice_summaries")
    invoices = documents = size = 0
    for account in dataset.accounts:
        for year, month in dataset.periods:
            pages = paginator.paginate(
                Selector={"ResourceType": "ACCOUNT_ID", "Value": account},
                Filter={"BillingPeriod": {"Year": year, "Month": month}},
                PaginationConfig={"PageSize": 100},
            )
            for page in pages:
                for summary in page["InvoiceSummaries"]:
                    invoice_id = summary["InvoiceId"]
                    pdf = invoicing.get_invoice_pdf(InvoiceId=invoice_id)["InvoicePDF"]
                    urls = [(invoice_id, pdf["DocumentUrl"])]
                    urls += [
                        (d["DocumentId"], d["DocumentUrl"]) for d in pdf.get("SupplementalDocuments", [])
                    ]
                    folder = f"baseline/{account}/{year:04d}-{month:02d}/{invoice_id}"
                    for document_id, url in urls:
                        response = http.request("GET", url)
                        s3.put_object(
                            Bucket=settings.archive_bucket,
                            Key=f"{folder}/{document_id}",
                            Body=response.data,
                            ContentType=response.headers.get("Content-Type", "application/pdf"),
                        )
                        documents += 1
                        size += len(response.data)
                    dynamodb.put_item(
                        TableName=settings.ledger_table,
                        Item={
                            LEDGER_PARTITION_KEY: {"S": account},
                            LEDGER_SORT_KEY: {"S": f"{year:04d}-{month:02d}#{invoice_id}"},
                            "status": {"S": "ARCHIVED"},
                            "document_count": {"N": str(len(urls))},
                        },
                    )
                    invoices += 1
    return {"invoices": invoices, "documents": documents, "bytes": size, "failed": 0}


def child(
    mode: str, workers: int, dataset_path: Path, log_file: Path, sandbox_pid: int | None
) -> dict[str, Any]:
    import os

    from invoice_archiver.cli.local import logs_to as _logs_to
    from invoice_archiver.cli.local import provision as _provision
    from invoice_archiver.cli.target import LOCAL_DEFAULTS
    from invoice_archiver.dal import clients
    from invoice_archiver.local.pipeline import run_pass
    from invoice_archiver.sandbox.dataset import Dataset
    from invoice_archiver.sandbox.documents import document_length
    from invoice_archiver.sandbox.runner import Sandbox

    dataset = Dataset.load(dataset_path)
    os.environ.update(LOCAL_DEFAULTS)
    os.environ["ACCOUNT_IDS"] = ",".join(dataset.accounts)
    result: dict[str, Any] = {
        "mode": mode,
        "workers": workers,
        "placement": "external" if sandbox_pid else "inproc",
        "dataset_invoices": dataset.invoice_count,
        "dataset_documents": dataset.document_count,
        "dataset_bytes": sum(document_length(d) for inv in dataset.invoices for d in inv.documents),
    }
    with Sandbox(dataset=dataset) as sandbox, _logs_to(log_file):
        clients.reset()
        settings = _provision()
        _reset_counts(sandbox)
        sandbox_cpu = common.cpu_seconds(sandbox_pid) if sandbox_pid else 0.0
        cpu = time.process_time()
        started = time.perf_counter()
        if mode == "baseline":
            result.update(_baseline(settings, dataset))
            result["seconds"] = time.perf_counter() - started
        else:
            event = {"billing_periods": list(PERIODS)}
            with _timed_lister() as lister_seconds:
                report = run_pass(event, settings, workers=workers)
            result["lister_seconds"] = lister_seconds[0]
            result["seconds"] = report.seconds  # lister + drain; excludes the ledger read-back
            result.update(
                invoices=report.archived,
                documents=report.documents,
                bytes=report.bytes,
                failed=report.failed + report.unresolved + report.quarantined,
                listed=report.listed,
                batches=report.drain.batches if report.drain else 0,
            )
        result["wall_seconds"] = time.perf_counter() - started
        result["cpu_seconds"] = time.process_time() - cpu
        result["sandbox_cpu_seconds"] = common.cpu_seconds(sandbox_pid) - sandbox_cpu if sandbox_pid else None
        result["requests"] = _request_counts(sandbox)
    return result


# --- figures ---------------------------------------------------------------------------------------


def summarize(r: dict[str, Any]) -> dict[str, Any]:
    seconds = r["seconds"] or float("nan")
    invoices = r["invoices"] or 1
    requests = r["requests"]
    # The ledger read-back after the pass (dynamodb:Query) is the report, not the pipeline.
    aws = sum(v for k, v in requests.items() if k != "dynamodb:Query" and not k.startswith("download:"))
    downloads = requests.get("download:GET", 0)
    return {
        "name": f"{r['mode']} w{r['workers']} {r['placement']}",
        "invoices": r["invoices"],
        "failed": r["failed"],
        "seconds": r["seconds"],
        "lister_seconds": r.get("lister_seconds"),
        "fetch_invoices_per_s": (
            r["invoices"] / (seconds - r["lister_seconds"]) if r.get("lister_seconds") is not None else None
        ),
        "invoices_per_s": r["invoices"] / seconds,
        "documents_per_s": r["documents"] / seconds,
        "mb_per_s": r["bytes"] / 1e6 / seconds,
        "aws_requests_per_invoice": aws / invoices if requests else None,
        "downloads_per_invoice": downloads / invoices if requests else None,
        "cpu_seconds": r["cpu_seconds"],
        "sandbox_cpu_seconds": r["sandbox_cpu_seconds"],
        "cpu_ms_per_invoice": 1000 * r["cpu_seconds"] / invoices,
        "sandbox_cpu_ms_per_invoice": (
            1000 * r["sandbox_cpu_seconds"] / invoices if r["sandbox_cpu_seconds"] is not None else None
        ),
    }


def report(results: list[dict[str, Any]]) -> None:
    first = results[0]
    print(
        f"  dataset: {first['dataset_invoices']} invoices, {first['dataset_documents']} documents, "
        f"{first['dataset_bytes'] / 1e6:.1f} MB"
    )
    print(
        f"  {'scenario':<24}{'s':>7}{'inv/s':>8}{'docs/s':>8}{'MB/s':>7}{'req/inv':>9}"
        f"{'CPU ms/inv':>11}{'sandbox ms/inv':>15}"
    )
    for r in results:
        s = summarize(r)
        req = "-" if s["aws_requests_per_invoice"] is None else f"{s['aws_requests_per_invoice']:.2f}"
        box = "-" if s["sandbox_cpu_ms_per_invoice"] is None else f"{s['sandbox_cpu_ms_per_invoice']:.1f}"
        flag = "" if s["failed"] == 0 and s["invoices"] == r["dataset_invoices"] else "  (incomplete!)"
        print(
            f"  {s['name']:<24}{s['seconds']:7.1f}{s['invoices_per_s']:8.1f}{s['documents_per_s']:8.1f}"
            f"{s['mb_per_s']:7.2f}{req:>9}{s['cpu_ms_per_invoice']:11.1f}{box:>15}{flag}"
        )
    print("  requests per invoice by operation (in-process runs; req/inv excludes downloads):")
    for r in results:
        if not r["requests"]:
            continue
        invoices = r["invoices"] or 1
        parts = ", ".join(
            f"{k} {v / invoices:.2f}" for k, v in r["requests"].items() if k != "dynamodb:Query"
        )
        print(f"    {r['mode']} w{r['workers']}: {parts}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=2000, help="invoices in the dataset (default 2000)")
    parser.add_argument("--workers", default="1,4,8", help="pipeline worker counts (default 1,4,8)")
    parser.add_argument("--no-external", action="store_true", help="skip the out-of-process sandbox runs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("pipeline", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--log-file", help=argparse.SUPPRESS)
    parser.add_argument("--sandbox-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(
            args.mode, int(args.workers), Path(args.dataset), Path(args.log_file), args.sandbox_pid
        )
        common.write_result(args.result, result)
        return 0
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        results = run(args.invoices, scenarios(workers, external=not args.no_external), Path(tmp))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
