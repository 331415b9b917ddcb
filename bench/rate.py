"""Rate-limit use: how close the pipeline runs to an emulated Invoicing API limit of R calls/s.

The sandbox throttles every operation above R calls in any one-second window (`--tps-limit R`), as
the real API limits each operation. The pipeline runs with INVOICING_RATE_LIMIT = R (one process
holds every worker, so its ceiling is the whole limit; see docs/deploy.md for deployed fetchers)
and must archive every invoice. *use* = invoices archived per second of fetching / R: each invoice
costs one GetInvoicePDF, so 100 % means GetInvoicePDF ran at the limit from the end of the listing
to the return of the last fetcher invocation. *API use* = successful GetInvoicePDF calls per second
from the first to the last. The sandbox (moto + emulator) runs in its own process, so the measured
process holds only the functions; a second row per R runs without a ceiling (AIMD alone).

    .venv/bin/python bench/rate.py [--rates 5,20] [--seconds 30] [--workers 4] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common
import throughput

ACCOUNTS = ("123456789012", "210987654321")
PERIODS = ("2026-08", "2026-09")


def dataset_for(invoices: int) -> Any:
    """About `invoices` one-document invoices over 2 accounts x 2 periods (the same seed every run)."""
    from invoice_archiver.sandbox.dataset import generate

    per = max(1, round(invoices / (len(ACCOUNTS) * len(PERIODS))))
    return generate(
        seed=5,
        accounts=ACCOUNTS,
        periods=tuple((int(p[:4]), int(p[5:])) for p in PERIODS),
        invoices_per_account_period=per,
        # One small PDF each: the figure is about the API's rate, so keep moto's share of the CPU small.
        document_size=(1024, 2048),
        supplemental=(0, 0),
    )


def run(
    rates: list[float], seconds: float, workers: int, concurrency: int, workdir: Path, *, aimd: bool = True
) -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for rate in rates:
        invoices = int(rate * seconds)
        dataset = workdir / f"dataset-{invoices}.json"
        dataset.write_text(dataset_for(invoices).to_json())
        for mode, ceiling in [("pipeline", rate), *([("pipeline", 0.0)] if aimd else []), ("client", rate)]:
            name = f"{mode}-rate-{rate:g}-ceiling-{ceiling:g}"
            label = f"INVOICING_RATE_LIMIT={ceiling:g}" if ceiling else "no ceiling (AIMD only)"
            print(f"  {mode} R={rate:g}/s, {invoices} invoices, {label} ...", end="", flush=True)
            started = time.monotonic()
            process, endpoints = throughput.start_external_sandbox(
                dataset, workdir / f"{name}-sandbox.log", ["--tps-limit", str(round(rate))]
            )
            try:
                args = [
                    "--mode",
                    mode,
                    "--rate",
                    str(rate),
                    "--ceiling",
                    str(ceiling),
                    "--dataset",
                    str(dataset),
                ]
                args += ["--workers", str(workers), "--concurrency", str(concurrency)]
                args += ["--log-file", str(workdir / f"{name}.log"), "--sandbox-pid", str(process.pid)]
                env = common.clean_env(endpoints)
                result = common.run_child("rate.py", args, env, workdir / f"{name}.json", 900)
            finally:
                common.stop_process(process)
            print(f" {result['use']:.0%} ({time.monotonic() - started:.0f}s with setup)", flush=True)
            results.append(result)
    return results


def child(
    rate: float,
    ceiling: float,
    dataset_path: Path,
    workers: int,
    concurrency: int,
    log_file: Path,
    sandbox_pid: int,
) -> dict[str, Any]:
    import contextlib
    import os

    from invoice_archiver.config import load_settings
    from invoice_archiver.dal import clients
    from invoice_archiver.handlers import fetcher, lister
    from invoice_archiver.local import resources
    from invoice_archiver.local.pipeline import run_pass
    from invoice_archiver.observability import logger
    from invoice_archiver.sandbox.dataset import Dataset

    dataset = Dataset.load(dataset_path)
    os.environ.update(
        {
            "ARCHIVE_BUCKET": "bench-rate",
            "LEDGER_TABLE": "bench-rate-ledger",
            "ACCOUNT_IDS": ",".join(dataset.accounts),
            "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "INVOICING_RATE_LIMIT": str(ceiling),
            "FETCHER_CONCURRENCY": str(concurrency),
        }
    )
    with log_file.open("w") as log, contextlib.redirect_stdout(log):  # the functions' EMF metrics
        logger.registered_handler.setStream(log)  # type: ignore[attr-defined]
        clients.reset()
        resources.ensure_bucket("bench-rate")
        resources.ensure_table("bench-rate-ledger")
        queue_url, dlq_url = resources.ensure_queues("bench-rate")
        os.environ.update({"INVOICE_QUEUE_URL": queue_url, "DEAD_LETTER_QUEUE_URL": dlq_url})
        clients.reset()
        settings = load_settings()
        # What the fetcher's own Invoicing client sees: each GetInvoicePDF answered, and each throttle.
        client = clients.invoicing(settings.invoicing_region, settings.invoicing_max_attempts, ceiling)
        answered: list[float] = []
        outcomes: Counter[str] = Counter()

        def on_response(response_dict: Any = None, parsed_response: Any = None, **_: Any) -> None:
            code = str(((parsed_response or {}).get("Error") or {}).get("Code", "ok"))
            outcomes[code] += 1
            if code == "ok":
                answered.append(time.monotonic())

        client.meta.events.register("response-received.invoicing.GetInvoicePDF", on_response)
        # ... and each ListInvoiceSummaries: the lister's pages and, since the evidence rule, the
        # fetcher's confirmation of every invoice, paced on that operation's own limit.
        confirmed: list[float] = []
        confirm_outcomes: Counter[str] = Counter()

        def on_listing(parsed_response: Any = None, **_: Any) -> None:
            code = str(((parsed_response or {}).get("Error") or {}).get("Code", "ok"))
            confirm_outcomes[code] += 1
            if code == "ok":
                confirmed.append(time.monotonic())

        client.meta.events.register("response-received.invoicing.ListInvoiceSummaries", on_listing)
        listed, finished = [0.0], [0.0]
        list_handler, fetch_handler = lister.handler, fetcher.handler

        def timed_lister(event: dict[str, Any], context: Any) -> dict[str, Any]:
            begun = time.perf_counter()
            try:
                return dict(list_handler(event, context))
            finally:
                listed[0] = time.perf_counter()
                del begun

        def timed_fetcher(event: dict[str, Any], context: Any) -> dict[str, Any]:
            try:
                return dict(fetch_handler(event, context))
            finally:
                finished[0] = max(finished[0], time.perf_counter())

        lister.handler = timed_lister  # type: ignore[assignment]
        fetcher.handler = timed_fetcher  # type: ignore[assignment]
        cpu, sandbox_cpu = time.process_time(), common.cpu_seconds(sandbox_pid)
        report = run_pass({"billing_periods": list(PERIODS)}, settings, workers=workers)
        cpu, sandbox_cpu = time.process_time() - cpu, common.cpu_seconds(sandbox_pid) - sandbox_cpu
    # From the end of the listing to the return of the last fetcher invocation (not the runner's final
    # empty poll of the queue, which Lambda's event source mapping charges to no one).
    fetch_seconds = finished[0] - listed[0]
    span = answered[-1] - answered[0] if len(answered) > 1 else 0.0
    return {
        "mode": "pipeline",
        "rate": rate,
        "ceiling": ceiling,
        "workers": workers,
        "concurrency": concurrency,
        "dataset_invoices": dataset.invoice_count,
        "archived": report.archived,
        "failed": report.failed + report.unresolved + report.quarantined,
        "seconds": report.seconds,
        "fetch_seconds": fetch_seconds,
        "invoices_per_s": report.archived / fetch_seconds,
        "use": report.archived / fetch_seconds / rate,
        "api_use": (len(answered) - 1) / span / rate if span else 0.0,
        "get_invoice_pdf_calls": sum(outcomes.values()),
        "throttled": outcomes["ThrottlingException"],
        "list_calls": sum(confirm_outcomes.values()),
        "list_throttled": confirm_outcomes["ThrottlingException"],
        "list_use": _use(confirmed, rate),
        "cpu_ms_per_invoice": 1000 * cpu / max(1, report.archived),
        "sandbox_cpu_ms_per_invoice": 1000 * sandbox_cpu / max(1, report.archived),
        "per_second": _per_second(answered),
    }


def client_only(rate: float, ceiling: float, dataset_path: Path, threads: int) -> dict[str, Any]:
    """GetInvoicePDF for every invoice from `threads` threads through one paced client, nothing else:
    what rate control alone reaches when the pipeline around it is not the bottleneck."""
    import os
    import threading

    from invoice_archiver.dal import clients
    from invoice_archiver.sandbox.dataset import Dataset

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    dataset = Dataset.load(dataset_path)
    client = clients.invoicing("us-east-1", 8, ceiling)
    answered: list[float] = []
    outcomes: Counter[str] = Counter()

    def on_response(parsed_response: Any = None, **_: Any) -> None:
        code = str(((parsed_response or {}).get("Error") or {}).get("Code", "ok"))
        outcomes[code] += 1
        if code == "ok":
            answered.append(time.monotonic())

    client.meta.events.register("response-received.invoicing.GetInvoicePDF", on_response)
    pending = [invoice.invoice_id for invoice in dataset.invoices]
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                invoice_id = pending.pop()
            client.get_invoice_pdf(InvoiceId=invoice_id)

    started = time.monotonic()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.monotonic() - started
    span = answered[-1] - answered[0] if len(answered) > 1 else 0.0
    return {
        "mode": "client",
        "rate": rate,
        "ceiling": ceiling,
        "workers": threads,
        "concurrency": 1,
        "dataset_invoices": dataset.invoice_count,
        "archived": len(answered),
        "failed": dataset.invoice_count - len(answered),
        "seconds": seconds,
        "fetch_seconds": seconds,
        "invoices_per_s": len(answered) / seconds,
        "use": len(answered) / seconds / rate,
        "api_use": (len(answered) - 1) / span / rate if span else 0.0,
        "get_invoice_pdf_calls": sum(outcomes.values()),
        "throttled": outcomes["ThrottlingException"],
        "cpu_ms_per_invoice": 0.0,
        "sandbox_cpu_ms_per_invoice": 0.0,
        "per_second": _per_second(answered),
    }


def _use(times: list[float], rate: float) -> float:
    """Calls answered per second from the first to the last, as a share of R."""
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return (len(times) - 1) / span / rate if span else 0.0


def _per_second(times: list[float]) -> list[int]:
    """GetInvoicePDF calls answered in each second from the first one."""
    counts: Counter[int] = Counter(int(t - times[0]) for t in times) if times else Counter()
    return [counts.get(n, 0) for n in range(max(counts, default=-1) + 1)]


def report(results: list[dict[str, Any]]) -> None:
    print(
        f"  {'what':<9}{'R/s':>5} {'ceiling':>8}{'invoices':>9}{'archived':>9}{'failed':>7}{'fetch s':>8}"
        f"{'inv/s':>7}{'use':>6}{'API use':>8}{'GetInvoicePDF':>14}{'throttled':>10}"
        f"{'ListInvoiceSummaries':>21}{'throttled':>10}{'its use':>8}"
        f"{'CPU ms/inv':>11}{'sandbox':>8}"
    )
    for r in results:
        ceiling = f"{r['ceiling']:g}" if r["ceiling"] else "none"
        listing = (
            f"{r['list_calls']:21}{r['list_throttled']:10}{r['list_use']:8.0%}"
            if "list_calls" in r
            else f"{'-':>21}{'-':>10}{'-':>8}"
        )
        print(
            f"  {r['mode']:<9}{r['rate']:5g} {ceiling:>8}{r['dataset_invoices']:9}{r['archived']:9}"
            f"{r['failed']:7}"
            f"{r['fetch_seconds']:8.1f}{r['invoices_per_s']:7.2f}{r['use']:6.0%}{r['api_use']:8.0%}"
            f"{r['get_invoice_pdf_calls']:14}{r['throttled']:10}{listing}{r['cpu_ms_per_invoice']:11.1f}"
            f"{r['sandbox_cpu_ms_per_invoice']:8.1f}"
        )
    print(
        "  use: invoices archived per second of fetching / R; API use: GetInvoicePDF answered per second"
        " / R; ListInvoiceSummaries: the lister's pages and the fetchers' confirmation of each invoice,"
        " on that operation's own limit (its use / R)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="5,20", help="emulated limits R, calls/s per operation")
    parser.add_argument("--seconds", type=float, default=30.0, help="invoices = R x this (default 30)")
    parser.add_argument("--workers", type=int, default=4, help="concurrent fetcher invocations (default 4)")
    parser.add_argument("--concurrency", type=int, default=4, help="FETCHER_CONCURRENCY (default 4)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--ceiling", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--log-file", help=argparse.SUPPRESS)
    parser.add_argument("--sandbox-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="pipeline", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child and args.mode == "client":
        threads = args.workers * args.concurrency
        common.write_result(args.result, client_only(args.rate, args.ceiling, Path(args.dataset), threads))
        return 0
    if args.child:
        result = child(
            args.rate,
            args.ceiling,
            Path(args.dataset),
            args.workers,
            args.concurrency,
            Path(args.log_file),
            args.sandbox_pid,
        )
        common.write_result(args.result, result)
        return 0
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-rate-") as tmp:
        results = run(rates, args.seconds, args.workers, args.concurrency, Path(tmp))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
