"""Cloud-shaped throughput: the sandbox answers with cloud latencies (`sandbox.faults.CLOUD`: Invoicing
150 ms, document 50 ms + 20 MB/s, S3 25 ms, DynamoDB 8 ms, SQS 10 ms), so waiting, not loopback CPU,
dominates as it does in AWS. In one run:

* ``sequential``: the plain boto3 loop of throughput.py (list, GetInvoicePDF, download, put_object, one
  put_item per invoice), one invoice after the other;
* ``pipeline``: the real lister, SQS, `--workers` concurrent fetcher invocations of FETCHER_CONCURRENCY
  records each; invoices/s and the ratio to the sequential loop;
* ``pipeline at R``: the same with the emulator throttling above R calls/s per operation and
  INVOICING_RATE_LIMIT = R; *use* = invoices/s of fetching / R.

Each in a fresh child process: the emulator runs in it, moto in a process of its own.

    .venv/bin/python bench/cloud.py [--invoices 200] [--workers 5] [--concurrency 4] [--rate 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

PERIODS = ("2026-08", "2026-09")


def run(invoices: int, workers: int, concurrency: int, rate: float, workdir: Path) -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for mode, limit in (("sequential", 0.0), ("pipeline", 0.0), ("pipeline", rate)):
        name = f"{mode}-{limit:g}"
        label = f"{mode} at R={limit:g}/s" if limit else mode
        print(f"  {label}, {invoices} invoices, cloud latencies ...", end="", flush=True)
        started = time.monotonic()
        args = ["--mode", mode, "--invoices", str(invoices), "--workers", str(workers)]
        args += [
            "--concurrency",
            str(concurrency),
            "--rate",
            str(limit),
            "--log-file",
            str(workdir / f"{name}.log"),
        ]
        result = common.run_child("cloud.py", args, common.clean_env(), workdir / f"{name}.json", 1800)
        print(
            f" {result['invoices_per_s']:.1f} inv/s ({time.monotonic() - started:.0f}s with setup)",
            flush=True,
        )
        results.append(result)
    return results


def child(
    mode: str, invoices: int, workers: int, concurrency: int, rate: float, log_file: Path
) -> dict[str, Any]:
    import cloud_pipeline
    import throughput

    from invoice_archiver.handlers import fetcher, lister
    from invoice_archiver.local.pipeline import run_pass
    from invoice_archiver.sandbox.faults import Faults

    dataset = cloud_pipeline.dataset(invoices)
    faults = Faults(tps_limit={"*": max(1, round(rate))}) if rate else None
    result: dict[str, Any] = {"mode": mode, "rate": rate, "workers": workers, "concurrency": concurrency}
    with cloud_pipeline.running(
        dataset,
        bucket="bench-cloud",
        table="bench-cloud-ledger",
        queue="bench-cloud",
        log_file=log_file,
        env={"INVOICING_RATE_LIMIT": str(rate), "FETCHER_CONCURRENCY": str(concurrency)},
        faults=faults,
    ) as (settings, _):
        cpu = time.process_time()
        if mode == "sequential":
            started = time.perf_counter()
            done = throughput._baseline(settings, dataset)
            seconds = time.perf_counter() - started
            result.update(invoices=done["invoices"], failed=0, seconds=seconds, fetch_seconds=seconds)
        else:
            marks = {"listed": 0.0, "finished": 0.0}
            list_handler, fetch_handler = lister.handler, fetcher.handler

            def timed_lister(event: dict[str, Any], context: Any) -> dict[str, Any]:
                try:
                    return dict(list_handler(event, context))
                finally:
                    marks["listed"] = time.perf_counter()

            def timed_fetcher(event: dict[str, Any], context: Any) -> dict[str, Any]:
                try:
                    return dict(fetch_handler(event, context))
                finally:
                    marks["finished"] = max(marks["finished"], time.perf_counter())

            lister.handler = timed_lister  # type: ignore[assignment]
            fetcher.handler = timed_fetcher  # type: ignore[assignment]
            started = time.perf_counter()
            report = run_pass({"billing_periods": list(PERIODS)}, settings, workers=workers)
            result.update(
                invoices=report.archived,
                failed=report.failed + report.unresolved + report.quarantined,
                seconds=marks["finished"] - started,
                list_seconds=marks["listed"] - started,
                fetch_seconds=marks["finished"] - marks["listed"],
            )
        result["cpu_ms_per_invoice"] = 1000 * (time.process_time() - cpu) / max(1, result["invoices"])
    result["dataset_invoices"] = dataset.invoice_count
    # End to end (the pipeline's listing included, as the sequential loop's is)
    result["invoices_per_s"] = result["invoices"] / result["seconds"]
    result["fetch_invoices_per_s"] = result["invoices"] / result["fetch_seconds"]
    result["use"] = result["fetch_invoices_per_s"] / rate if rate else None
    return result


def report(results: list[dict[str, Any]]) -> None:
    sequential = next(r for r in results if r["mode"] == "sequential")
    print(
        f"  {'scenario':<22}{'invoices':>9}{'failed':>7}{'s':>7}{'inv/s':>7}{'fetch inv/s':>12}"
        f"{'x sequential':>13}{'use of R':>9}{'CPU ms/inv':>11}"
    )
    for r in results:
        name = f"{r['mode']} at R={r['rate']:g}" if r["rate"] else r["mode"]
        if r["mode"] == "pipeline":
            name += f" w{r['workers']}x{r['concurrency']}"
        use = "-" if r["use"] is None else f"{r['use']:.0%}"
        print(
            f"  {name:<22}{r['invoices']:9}{r['failed']:7}{r['seconds']:7.1f}{r['invoices_per_s']:7.2f}"
            f"{r['fetch_invoices_per_s']:12.2f}{r['invoices_per_s'] / sequential['invoices_per_s']:13.1f}"
            f"{use:>9}{r['cpu_ms_per_invoice']:11.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=200)
    parser.add_argument("--workers", type=int, default=5, help="concurrent fetchers (the stack's default)")
    parser.add_argument("--concurrency", type=int, default=4, help="FETCHER_CONCURRENCY (default 4)")
    parser.add_argument("--rate", type=float, default=20.0, help="R for the rate-limited run (default 20)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--log-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(
            args.mode, args.invoices, args.workers, args.concurrency, args.rate, Path(args.log_file)
        )
        common.write_result(args.result, result)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-cloud-") as tmp:
        results = run(args.invoices, args.workers, args.concurrency, args.rate, Path(tmp))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
