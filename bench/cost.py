"""What 10,000 invoices cost in AWS, computed from a measured run instead of assumed figures.

A fresh child process runs the real pipeline at cloud latencies (`sandbox.faults.CLOUD`) with the stack's
shape (5 concurrent fetchers of FETCHER_CONCURRENCY records, batches of 10) and measures, per invoice:
the fetcher's and lister's billed duration (each invocation's wall time), every AWS request by service
and operation (a botocore hook on the session all clients come from), the ledger items' size (write
units), the bytes stored and the bytes of log lines. The INIT phase, billed since August 2025, is the
median cold start of bench/coldstart.py (the fetcher's import plus its clients), once per fetcher
environment and once for the lister. Then it prices that with us-east-1 list prices (arm64, no free tier).

    .venv/bin/python bench/cost.py [--invoices 200] [--markdown]

Fixed monthly costs (alarms, dashboard, KMS key, the event source's idle polling) do not depend on the
number of invoices and are listed apart.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common

# us-east-1 list prices, November 2026, arm64; no free tier.
PRICES = {
    "lambda_gb_s": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "sqs_request": 0.40 / 1e6,  # per 64 KB chunk; our messages are smaller
    "dynamodb_wru": 0.625 / 1e6,
    "dynamodb_rru": 0.125 / 1e6,
    "s3_put": 0.005 / 1000,  # PUT, COPY, POST, LIST
    "s3_get": 0.0004 / 1000,  # GET, HEAD
    "s3_gb_month": 0.023,
    "eventbridge_event": 1.00 / 1e6,  # custom events; S3's own events to the default bus are free
    "logs_gb": 0.50,
}
S3_PUT_CLASS = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "CopyObject"}
S3_GET_CLASS = {"GetObject", "HeadObject"}
FETCHER_GB, LISTER_GB = 1.0, 0.25  # the stack's fetcher_memory_mb / lister_memory_mb defaults
FETCHER_ENVIRONMENTS = 5  # fetcher_max_concurrency: environments a run starts, each with one INIT


def measure(invoices: int, workdir: Path) -> dict[str, Any]:
    args = ["--invoices", str(invoices), "--log-file", str(workdir / "cost.log")]
    return dict(common.run_child("cost.py", args, common.clean_env(), workdir / "cost.json", 1800))


def child(invoices: int, log_file: Path) -> dict[str, Any]:
    import cloud_pipeline
    import throughput

    from invoice_archiver.dal import clients
    from invoice_archiver.handlers import fetcher, lister
    from invoice_archiver.local.pipeline import run_pass

    dataset = cloud_pipeline.dataset(invoices)
    requests: Counter[str] = Counter()
    durations: dict[str, list[float]] = {"fetcher": [], "lister": []}
    with cloud_pipeline.running(
        dataset,
        bucket="cost-archive",
        table="cost-ledger",
        queue="cost-invoices",
        log_file=log_file,
        env={"FETCHER_CONCURRENCY": "4"},
    ) as (settings, log):
        counting = [True]  # clients copy the session's hooks when created: switch the hook off instead

        def count(event_name: str = "", **_: Any) -> None:
            if counting[0]:
                _, service, operation = event_name.split(".", 2)
                requests[f"{service}:{operation}"] += 1

        emitter = clients.botocore_session().get_component("event_emitter")
        emitter.register("response-received", count)
        handlers = {"fetcher": fetcher.handler, "lister": lister.handler}

        def timed(name: str) -> Any:
            def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
                started = time.perf_counter()
                try:
                    return dict(handlers[name](event, context))
                finally:
                    durations[name].append(time.perf_counter() - started)

            return run

        fetcher.handler = timed("fetcher")  # type: ignore[assignment]
        lister.handler = timed("lister")  # type: ignore[assignment]
        before = log_file.stat().st_size
        report = run_pass({"billing_periods": list(throughput.PERIODS)}, settings, workers=5)
        counting[0] = False
        log.flush()
        log_bytes = log_file.stat().st_size - before
        items = clients.dynamodb().scan(TableName="cost-ledger")["Items"]
        item_bytes = [_item_size(item) for item in items]
        stored = 0
        for page in clients.s3().get_paginator("list_objects_v2").paginate(Bucket="cost-archive"):
            stored += sum(obj["Size"] for obj in page.get("Contents", []))
    # Not the pipeline's: the report's ledger read-back (Query) and the local runner's queue-empty check
    # (GetQueueAttributes); Lambda's event source mapping polls on its own, a fixed cost listed apart.
    requests.pop("dynamodb:Query", None)
    requests.pop("sqs:GetQueueAttributes", None)
    return {
        "invoices": report.archived,
        "failed": report.failed + report.unresolved + report.quarantined,
        "fetcher_invocations": len(durations["fetcher"]),
        "fetcher_seconds": sum(durations["fetcher"]),
        "lister_seconds": sum(durations["lister"]),
        "requests": dict(requests),
        "ledger_item_bytes": sum(item_bytes) / max(1, len(item_bytes)),
        "stored_bytes": stored,
        "log_bytes": log_bytes,
    }


def _item_size(value: Any, name: str = "") -> int:
    """DynamoDB's item size: attribute names plus values (strings in UTF-8, numbers ~ digits / 2 + 1,
    3 bytes per list or map and 1 per element), which decides the write units."""
    size = len(name.encode())
    if (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in {"S", "N", "BOOL", "NULL", "L", "M"}
    ):
        kind, inner = next(iter(value.items()))
        if kind == "S":
            return size + len(str(inner).encode())
        if kind == "N":
            return size + len(str(inner)) // 2 + 1
        if kind in {"BOOL", "NULL"}:
            return size + 1
        if kind == "L":
            return size + 3 + sum(_item_size(v) + 1 for v in inner)
        return size + 3 + sum(_item_size(v, k) + 1 for k, v in inner.items())
    return size + sum(_item_size(v, k) for k, v in value.items())


def price(m: dict[str, Any], init_seconds: float, invoices: int) -> list[tuple[str, str, float]]:
    """(line, what was measured, dollars) for `invoices` invoices, scaled from the measured run."""
    n = invoices / m["invoices"]
    req = Counter({k: v * n for k, v in m["requests"].items()})
    by_service: Counter[str] = Counter()
    for key, value in req.items():
        by_service[key.split(":")[0]] += value
    invocations = m["fetcher_invocations"] * n + 1
    gb_s = m["fetcher_seconds"] * n * FETCHER_GB + m["lister_seconds"] * n * LISTER_GB
    init_gb_s = init_seconds * (FETCHER_ENVIRONMENTS * FETCHER_GB + LISTER_GB)
    wru_per_write = math.ceil(m["ledger_item_bytes"] / 1024)
    writes = sum(v for k, v in req.items() if k.split(":")[1] in {"PutItem", "UpdateItem", "DeleteItem"})
    reads = sum(v for k, v in req.items() if k.split(":")[1] in {"GetItem", "Query", "Scan"})
    puts = sum(v for k, v in req.items() if k.startswith("s3:") and k.split(":")[1] in S3_PUT_CLASS)
    gets = sum(v for k, v in req.items() if k.startswith("s3:") and k.split(":")[1] in S3_GET_CLASS)
    events = sum(v for k, v in req.items() if k.endswith("PutEvents"))
    stored_gb = m["stored_bytes"] * n / 1e9
    log_gb = m["log_bytes"] * n / 1e9
    return [
        (
            "Lambda duration",
            f"{gb_s:,.0f} GB-s ({m['fetcher_seconds'] / m['invoices']:.2f} s/invoice)",
            gb_s * PRICES["lambda_gb_s"],
        ),
        (
            "Lambda INIT",
            f"{init_gb_s:.1f} GB-s ({init_seconds:.2f} s x 6 environments)",
            init_gb_s * PRICES["lambda_gb_s"],
        ),
        ("Lambda requests", f"{invocations:,.0f} invocations", invocations * PRICES["lambda_request"]),
        ("SQS", f"{by_service['sqs']:,.0f} requests", by_service["sqs"] * PRICES["sqs_request"]),
        (
            "DynamoDB",
            f"{writes:,.0f} writes x {wru_per_write} WRU, {reads:,.0f} reads",
            writes * wru_per_write * PRICES["dynamodb_wru"] + reads * PRICES["dynamodb_rru"],
        ),
        (
            "S3 requests",
            f"{puts:,.0f} PUT, {gets:,.0f} GET/HEAD",
            puts * PRICES["s3_put"] + gets * PRICES["s3_get"],
        ),
        ("S3 storage, first month", f"{stored_gb:,.2f} GB", stored_gb * PRICES["s3_gb_month"]),
        ("EventBridge", f"{events:,.0f} custom events", events * PRICES["eventbridge_event"]),
        ("CloudWatch Logs", f"{log_gb * 1000:,.1f} MB", log_gb * PRICES["logs_gb"]),
    ]


def report(m: dict[str, Any], init_seconds: float, invoices: int = 10_000, markdown: bool = False) -> float:
    lines = price(m, init_seconds, invoices)
    total = sum(cost for _, _, cost in lines)
    per = ", ".join(f"{k} {v / m['invoices']:.2f}" for k, v in sorted(m["requests"].items()))
    if markdown:
        print(f"| per {invoices:,} invoices | measured (scaled from {m['invoices']}) | US$ |\n|---|---|---|")
        for name, what, cost in lines:
            print(f"| {name} | {what} | {cost:.4f} |")
        print(f"| **Total** | | **{total:.2f}** |")
    else:
        print(f"  measured on {m['invoices']} invoices ({m['failed']} failed); requests per invoice: {per}")
        for name, what, cost in lines:
            print(f"  {name:<26}{what:<52}${cost:9.4f}")
        print(f"  {'total per ' + format(invoices, ',') + ' invoices':<78}${total:9.4f}")
    return total


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=200, help="invoices to measure (default 200)")
    parser.add_argument("--init-seconds", type=float, help="cold start per environment (default: measure)")
    parser.add_argument("--markdown", action="store_true", help="print the table for docs/deploy.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--log-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        common.write_result(args.result, child(args.invoices, Path(args.log_file)))
        return 0
    init = args.init_seconds
    if init is None:
        import coldstart

        init = coldstart.run(5, layer=False)["cases"]["fetcher + its clients"]["wall_ms"] / 1000
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        measured = measure(args.invoices, Path(tmp))
    for invoices in (10_000,) if args.markdown else (100, 10_000, 1_000_000):
        print(f"\nper {invoices:,} invoices")
        report(measured, init, invoices, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
