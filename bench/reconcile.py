"""The reconciliation with the cost data: time and peak memory for a 1-million-line export, the reconciler's
cold start beside the fetcher's, and the packages' sizes.

* Streamed reading: a child writes a CUR 2.0 export of `--lines` lines (Parquet, DOUBLE costs, as AWS
  writes it; and the same as gzip CSV) from a sandbox dataset; a fresh child per format reconciles it
  with the dataset's archived summaries (read_cost_data + compare, the code the command and the function
  run), printing the wall time and its peak RSS (VmHWM) beside the file's size; another child loads the
  same columns whole (pyarrow.parquet.read_table, then as Python rows) for contrast.
* Cold import: `import invoice_archiver.handlers.reconciler` (which imports pyarrow) beside the fetcher's,
  in fresh interpreters with Lambda's environment, the pruned columnar layer first on sys.path (built for
  this machine's platform as `cdk synth` builds Lambda's; see bench/coldstart.py for the method).
* Sizes: the reconciler's and the fetcher's code assets, the columnar layer (Lambda's arm64 build) pruned
  and not.

    .venv/bin/python bench/reconcile.py [--lines 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import coldstart
import common

RECONCILER = "import invoice_archiver.handlers.reconciler"
FETCHER = "import invoice_archiver.handlers.fetcher"
PERIOD = (2026, 2)


def dataset(lines: int) -> Any:
    from invoice_archiver.sandbox.dataset import generate

    invoices = max(1, lines // 1000)
    return generate(seed=11, periods=(PERIOD,), invoices_per_account_period=max(1, invoices // 3))


def child_generate(lines: int, out: Path) -> dict[str, Any]:
    """Write the export (Parquet and gzip CSV) in chunks, and the archived summaries as JSON."""
    import gzip

    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from invoice_archiver.sandbox import cost_data, cost_files

    data = dataset(lines)
    per_invoice = max(1, lines // len(data.invoices))
    stream = cost_data.lines(data, PERIOD, cost_data.Discrepancies(), cost_data.Injected(),
                             lines_per_invoice=(per_invoice - 5, per_invoice + 5))  # fmt: skip
    parquet = out / "export/cur/data/BILLING_PERIOD=2026-02/cur-00001.snappy.parquet"
    csv_path = out / "export-csv/cur/data/BILLING_PERIOD=2026-02/cur-00001.csv.gz"
    parquet.parent.mkdir(parents=True)
    csv_path.parent.mkdir(parents=True)
    written, writer, chunk = 0, None, []
    with gzip.open(csv_path, "wb", compresslevel=6) as csv_stream:
        for line in stream:
            chunk.append(line)
            if len(chunk) == 100_000:
                writer = _write_chunk(cost_files.cur2_table(chunk), parquet, writer, csv_stream, written == 0)
                written, chunk = written + len(chunk), []
        writer = _write_chunk(cost_files.cur2_table(chunk), parquet, writer, csv_stream, written == 0)
        written += len(chunk)
    assert writer is not None
    writer.close()
    documents = [
        {"account_id": i.account_id, "invoice_id": i.invoice_id, "invoice_summary": _json_summary(i.summary)}
        for i in data.invoices
    ]
    (out / "archived.json").write_text(json.dumps(documents))
    del pa_csv, pq
    return {
        "lines": written,
        "invoices": len(data.invoices),
        "parquet_bytes": parquet.stat().st_size,
        "csv_gz_bytes": csv_path.stat().st_size,
    }


def _write_chunk(table: Any, parquet: Path, writer: Any, csv_stream: Any, header: bool) -> Any:
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    if writer is None:
        writer = pq.ParquetWriter(parquet, table.schema, compression="snappy")
    writer.write_table(table, row_group_size=128 * 1024)
    pa_csv.write_csv(table, csv_stream, pa_csv.WriteOptions(include_header=header))
    return writer


def _json_summary(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in summary.items()}


def child_reconcile(folder: Path, archived: Path) -> dict[str, Any]:
    """Reconcile the export in `folder` with the archived summaries; wall time and peak RSS."""
    from datetime import UTC, datetime

    from invoice_archiver.logic import reconcile_job, reconciliation
    from invoice_archiver.models.period import BillingPeriod

    baseline = common.proc_status().get("VmRSS", 0)
    common.reset_peak_rss()
    started = time.perf_counter()
    request = reconcile_job.Request(BillingPeriod(*PERIOD), str(folder), datetime.now(UTC))
    cost = reconcile_job.read_cost_data(request, None)  # type: ignore[arg-type]
    documents = [(f"k/{d['invoice_id']}", d) for d in json.loads(archived.read_text())]
    outcome = reconciliation.compare(
        request.period, cost, reconciliation.archived_from(documents),
        state=reconciliation.finality(request.period, request.now, cost), tolerance=None,
        archive_accounts=set(), ledger={}, generated_at=request.now.isoformat(),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    status = common.proc_status()
    matched = outcome.count(reconciliation.Kind.MATCHED)
    return {
        "seconds": seconds,
        "lines": cost.lines,
        "baseline_rss": baseline,
        "peak_rss": status["VmHWM"],
        "matched": matched,
        "problems": outcome.problems,
    }


def child_load_whole(parquet: Path) -> dict[str, Any]:
    """What loading the same columns whole takes: an Arrow table, then Python rows."""
    import pyarrow.parquet as pq

    from invoice_archiver.models.cost import ExportFormat, source_columns

    baseline = common.proc_status().get("VmRSS", 0)
    table = pq.read_table(parquet, columns=list(source_columns(ExportFormat.CUR2).values()))
    arrow_peak = common.proc_status()["VmHWM"]
    rows = table.to_pylist()
    rows_peak = common.proc_status()["VmHWM"]
    return {
        "baseline_rss": baseline,
        "arrow_peak_rss": arrow_peak,
        "rows_peak_rss": rows_peak,
        "rows": len(rows),
    }


def sizes(work: Path) -> dict[str, Any]:
    from invoice_archiver.infra.columnar_layer import LOCK_DIR, LOCK_FILE, build_pruned, prune
    from invoice_archiver.infra.constants import FUNCTIONS_ASSET_EXCLUDE, RECONCILER_MODULES
    from invoice_archiver.infra.sdk_layer import build

    lock = LOCK_DIR / LOCK_FILE
    pruned = build_pruned(lock, python_version="3.14", platform="manylinux_2_28_aarch64", target=work / "arm")
    whole = build(lock, python_version="3.14", platform="manylinux_2_28_aarch64")
    local = build_pruned(lock, python_version="3.11", platform="manylinux_2_28_x86_64", target=work / "here")
    fetcher = list(FUNCTIONS_ASSET_EXCLUDE)
    reconciler = [p for p in FUNCTIONS_ASSET_EXCLUDE if p not in RECONCILER_MODULES]
    del prune
    return {
        "columnar_pruned": coldstart.layer_size(pruned),
        "columnar_unpruned": coldstart.layer_size(whole),
        "fetcher_asset": _asset_size(fetcher),
        "reconciler_asset": _asset_size(reconciler),
        "local_layer": str(local),
    }


def _asset_size(exclude: list[str]) -> int:
    """Bytes of src/ as CDK stages it with these exclude globs (gitignore-style, approximated by fnmatch)."""
    src = common.ROOT / "src"
    total = 0
    for path in src.rglob("*"):
        relative = path.relative_to(src).as_posix()
        parts = relative.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if path.is_file() and not any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(path.name, pat)
                                      for pat in exclude for p in prefixes):  # fmt: skip
            total += path.stat().st_size
    return total


def coldstarts(layer: Path, repeat: int) -> dict[str, Any]:
    [(_, _, base)] = [case for case in coldstart.cases(None) if case[0] == "fetcher"]
    layered = {
        **base,
        "PYTHONPATH": f"{layer / 'python'}:{common.ROOT / 'src'}",
        "COST_DATA_EXPORT": "s3://b/p/",
    }
    chosen = [("fetcher", FETCHER, base), ("reconciler (pyarrow layer)", RECONCILER, layered),
              ("pyarrow alone", "import pyarrow.parquet, pyarrow.csv, pyarrow.compute", layered)]  # fmt: skip
    for _, code, env in chosen:
        coldstart.sample(code, env)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in chosen}
    for _ in range(repeat):
        for name, code, env in chosen:
            samples[name].append(coldstart.sample(code, env))
    return {
        name: {
            "wall_ms": 1000 * statistics.median(v[0] for v in values),
            "cpu_ms": 1000 * statistics.median(v[1] for v in values),
        }
        for name, values in samples.items()
    }


def run(lines: int, repeat: int, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    env = common.clean_env()
    generate = ["--mode", "generate", "--lines", str(lines), "--dir", str(workdir)]
    result: dict[str, Any] = {
        "export": common.run_child("reconcile.py", generate, env, workdir / "generate.json", timeout=3600)
    }
    for name, folder in (("parquet", "export"), ("csv.gz", "export-csv")):
        args = ["--mode", "reconcile", "--dir", str(workdir), "--folder", folder]
        result[name] = common.run_child("reconcile.py", args, env, workdir / f"{name}.json", timeout=3600)
    whole = ["--mode", "whole", "--dir", str(workdir)]
    result["whole"] = common.run_child("reconcile.py", whole, env, workdir / "whole.json", timeout=3600)
    result["sizes"] = sizes(workdir / "layers")
    result["coldstart"] = coldstarts(Path(result["sizes"]["local_layer"]), repeat)
    return result


def report(result: dict[str, Any]) -> None:
    export = result["export"]
    print(
        f"  export: {export['lines']:,} lines, {export['invoices']} invoices; "
        f"Parquet {common.mib(export['parquet_bytes']):.1f} MiB, "
        f"gzip CSV {common.mib(export['csv_gz_bytes']):.1f} MiB"
    )
    for name in ("parquet", "csv.gz"):
        r = result[name]
        print(
            f"  reconcile {name:<8} {r['seconds']:6.1f} s  {r['lines'] / r['seconds']:>9,.0f} lines/s  "
            f"peak RSS {common.mib(r['peak_rss']):6.1f} MiB "
            f"(after imports {common.mib(r['baseline_rss']):.1f}); "
            f"{r['matched']} matched, {r['problems']} problems"
        )
    w = result["whole"]
    print(
        f"  loading the same columns whole: Arrow table peak {common.mib(w['arrow_peak_rss']):.0f} MiB, "
        f"as Python rows {common.mib(w['rows_peak_rss']):.0f} MiB"
    )
    s = result["sizes"]
    print(
        f"  columnar layer (arm64): {s['columnar_pruned'][0] / 1e6:.1f} MB unzipped pruned "
        f"({s['columnar_unpruned'][0] / 1e6:.1f} MB whole), {s['columnar_pruned'][1] / 1e6:.1f} MB zipped"
    )
    fetcher, reconciler = s["fetcher_asset"] / 1e3, s["reconciler_asset"] / 1e3
    print(f"  code assets: fetcher/lister {fetcher:.0f} kB, reconciler {reconciler:.0f} kB")
    for name, row in result["coldstart"].items():
        print(f"  cold import {name:<28}{row['wall_ms']:7.0f} ms wall {row['cpu_ms']:7.0f} ms CPU")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("generate", "reconcile", "whole"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--folder")
    parser.add_argument("--result", type=Path)
    args = parser.parse_args()
    if args.child and args.mode == "generate":
        found = child_generate(args.lines, args.dir)
    elif args.child and args.mode == "reconcile":
        found = child_reconcile(args.dir / args.folder, args.dir / "archived.json")
    elif args.child and args.mode == "whole":
        found = child_load_whole(args.dir / "export/cur/data/BILLING_PERIOD=2026-02/cur-00001.snappy.parquet")
    else:
        with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
            report(run(args.lines, args.repeat, Path(tmp)))
        return 0
    args.result.write_text(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
