"""`make bench`: every figure of bench/ in fresh child processes, then one table. No assertions on timing.

    .venv/bin/python bench/run.py                       # every figure (about 25 minutes on 2 cores)
    .venv/bin/python bench/run.py --skip throughput     # the issue-10 figures only: rate, cold, cloud, memory
    .venv/bin/python bench/run.py --size-mib 64 --invoices 200      # a quick run
    .venv/bin/python bench/run.py --skip memory --json out.json

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cloud
import coldstart
import common
import evidence
import memory
import rate
import reconcile
import throughput

RSS_LIMIT_MIB = 128  # issue 15's requirement for the 1 GiB document, printed beside the figure (not asserted)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mib", type=int, default=1024, help="document size for peak RSS (default 1024)"
    )
    parser.add_argument("--invoices", type=int, default=2000, help="invoices for throughput (default 2000)")
    parser.add_argument("--workers", default="1,4,8", help="pipeline worker counts (default 1,4,8)")
    parser.add_argument(
        "--external-invoices",
        type=int,
        default=500,
        help="invoices for the out-of-process sandbox variants (default 500; 0 skips them)",
    )
    parser.add_argument("--rates", default="5,20", help="emulated Invoicing limits R for rate-limit use")
    parser.add_argument("--cloud-invoices", type=int, default=200, help="invoices at cloud latencies")
    parser.add_argument("--repeat", type=int, default=7, help="fresh interpreters per cold-start case")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("memory", "throughput", "rate", "coldstart", "cloud", "daily", "evidence", "reconcile"),
    )
    parser.add_argument(
        "--evidence-before",
        default=evidence.BEFORE,
        help=f"revision the evidence rule's cost is compared with (default {evidence.BEFORE})",
    )
    parser.add_argument("--daily-invoices", type=int, default=10_000, help="archived invoices, daily run")
    parser.add_argument(
        "--reconcile-lines",
        type=int,
        default=1_000_000,
        help="cost data lines reconciled (default 1,000,000)",
    )
    parser.add_argument("--json", type=Path, help="also write every raw result to this file")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",") if w.strip()]

    info = common.machine()
    print(
        f"machine: {info['cores']} cores ({info['usable_cores']} usable), {info['cpu'] or 'unknown CPU'}; "
        f"{info['implementation']} {info['python']}; {info['platform']}"
    )
    started = time.monotonic()
    raw: dict[str, Any] = {"machine": info}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        if "memory" not in args.skip:
            print(f"\n[1] peak RSS while archiving one {args.size_mib} MiB document")
            raw["memory"] = memory.run(args.size_mib, workdir / "memory")
            memory.report(raw["memory"])
        if "throughput" not in args.skip:
            print(f"\n[2] throughput, {args.invoices} invoices (in-process sandbox)")
            results = throughput.run(
                args.invoices, throughput.scenarios(workers, external=False), workdir / "inproc"
            )
            if args.external_invoices:
                print(f"    out-of-process sandbox variant, {args.external_invoices} invoices")
                results += throughput.run(
                    args.external_invoices, throughput.scenarios(workers, inproc=False), workdir / "external"
                )
            raw["throughput"] = results
            throughput.report(results)
        if "rate" not in args.skip:
            print("\n[3] rate-limit use: the emulator throttles above R calls/s per operation")
            raw["rate"] = rate.run([float(r) for r in args.rates.split(",")], 30.0, 4, 4, workdir / "rate")
            rate.report(raw["rate"])
        if "coldstart" not in args.skip:
            print("\n[4] cold import of the handlers beside import boto3 + one client")
            raw["coldstart"] = coldstart.run(args.repeat)
            coldstart.report(raw["coldstart"])
        if "cloud" not in args.skip:
            print("\n[5] cloud-shaped latencies: the pipeline against the sequential loop and the rate limit")
            raw["cloud"] = cloud.run(args.cloud_invoices, 5, 4, 20.0, workdir / "cloud")
            cloud.report(raw["cloud"])
        if "daily" not in args.skip:
            print(f"\n[6] an unchanged daily run over {args.daily_invoices} archived invoices")
            raw["daily"] = common.run_child(
                "daily.py",
                ["--invoices", str(args.daily_invoices)],
                common.clean_env(),
                workdir / "daily.json",
                timeout=3600,
            )  # the child prints its own line
        if "evidence" not in args.skip:
            print("\n[7] what the evidence rule costs: requests per archived invoice, before and after")
            raw["evidence"] = evidence.run(400, args.evidence_before, workdir / "evidence")
            evidence.report(raw["evidence"])
        if "reconcile" not in args.skip:
            print(f"\n[8] reconciliation with the cost data: {args.reconcile_lines:,} lines, streamed")
            raw["reconcile"] = reconcile.run(args.reconcile_lines, args.repeat, workdir / "reconcile")
            reconcile.report(raw["reconcile"])
    raw["seconds"] = time.monotonic() - started
    print_table(raw)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1, sort_keys=True))
    return 0


def print_table(raw: dict[str, Any]) -> None:
    info = raw["machine"]
    print(
        f"\n{'=' * 100}\nSUMMARY  ({info['cores']} cores, Python {info['python']}; "
        f"bench took {raw['seconds']:.0f}s)"
    )
    if "memory" in raw:
        m = raw["memory"]
        s = memory.summarize(m)
        verdict = "within" if s["peak_mb"] <= RSS_LIMIT_MIB else "OVER"
        print(
            f"\nPeak RSS, one {common.mib(m['stored_bytes']):.0f} MiB document "
            "(archiver + emulator in the measured process; moto elsewhere)"
        )
        print(
            f"  {'baseline MiB':>13}{'peak MiB':>10}{'delta MiB':>11}{'ru_maxrss':>11}"
            f"{'bytes':>15}{'s':>7}{'MiB/s':>7}  sha256"
        )
        print(
            f"  {s['baseline_mb']:13.1f}{s['peak_mb']:10.1f}{s['delta_mb']:11.1f}{s['ru_maxrss_mb']:11.1f}"
            f"{s['bytes']:15,}{s['seconds']:7.1f}{s['mib_per_s']:7.0f}  "
            f"{'ok' if m['sha256_ok'] else 'MISMATCH'}"
        )
        print(f"  peak is {verdict} the {RSS_LIMIT_MIB} MiB requirement")
    if "rate" in raw:
        print("\nRate-limit use (goal >= 90 % of R with 0 failed invoices)")
        rate.report(raw["rate"])
    if "evidence" in raw:
        print("\nThe evidence rule: requests per archived invoice before and after (pipeline w4, in process)")
        evidence.report(raw["evidence"])
    if "coldstart" in raw:
        print("\nCold import (goal <= 1.5 x import boto3 + one client)")
        coldstart.report(raw["coldstart"])
    if "reconcile" in raw:
        print("\nReconciliation with the cost data (streamed; contrast: the same columns loaded whole)")
        reconcile.report(raw["reconcile"])
    if "cloud" in raw:
        print("\nCloud-shaped latencies (sandbox.faults.CLOUD)")
        cloud.report(raw["cloud"])
    if "throughput" in raw:
        print(
            "\nThroughput (small documents; req/inv = AWS API requests per invoice, downloads not included)"
        )
        print(
            f"  {'scenario':<24}{'invoices':>9}{'s':>7}{'list s':>7}{'inv/s':>7}{'fetch inv/s':>12}"
            f"{'docs/s':>7}{'MB/s':>6}{'req/inv':>8}"
            f"{'dl/inv':>8}{'CPU ms/inv':>11}{'sandbox CPU ms/inv':>19}"
        )
        for r in raw["throughput"]:
            s = throughput.summarize(r)
            req = "-" if s["aws_requests_per_invoice"] is None else f"{s['aws_requests_per_invoice']:.2f}"
            dl = "-" if s["downloads_per_invoice"] is None else f"{s['downloads_per_invoice']:.2f}"
            listed = "-" if s["lister_seconds"] is None else f"{s['lister_seconds']:.1f}"
            fetch = "-" if s["fetch_invoices_per_s"] is None else f"{s['fetch_invoices_per_s']:.1f}"
            box = "-" if s["sandbox_cpu_ms_per_invoice"] is None else f"{s['sandbox_cpu_ms_per_invoice']:.1f}"
            print(
                f"  {s['name']:<24}{s['invoices']:>9}{s['seconds']:7.1f}{listed:>7}{s['invoices_per_s']:7.1f}"
                f"{fetch:>12}{s['documents_per_s']:7.1f}{s['mb_per_s']:6.2f}{req:>8}{dl:>8}{s['cpu_ms_per_invoice']:11.1f}{box:>19}"
            )
        print("  inproc: moto + emulator share the measured process (CPU ms/inv includes them);")
        print("  external: they run in a separate process, whose CPU is the last column.")


if __name__ == "__main__":
    sys.exit(main())
