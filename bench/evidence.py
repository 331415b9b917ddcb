"""What the evidence rule costs: requests per archived invoice before and after it, side by side.

Since issue 15 the fetcher confirms each invoice with ListInvoiceSummaries (Selector INVOICE_ID) through
its source before writing anything. This measures what that costs, with each side's own code: "before"
is the tree at `--before` (default: the last commit before messages became pointers), exported with
`git archive` (src/ and bench/) into a temporary folder, and "after" is this working tree. Each runs
throughput's `pipeline w4 inproc` scenario (the real lister, the SQS event-source emulator, the real
fetcher, moto and the emulator in process) over the same dataset, in a fresh child process, and reports
the AWS requests the sandbox saw per archived invoice, by operation.

    .venv/bin/python bench/evidence.py [--invoices 400] [--before 83c7cc7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import common
import throughput

# The last commit before the fetcher confirmed invoices with the API (messages carried the summary).
BEFORE = "83c7cc7"
WORKERS = 4


def export(revision: str, into: Path) -> Path:
    """src/ and bench/ of `revision`, as they were, in `into` (a checkout without a work tree)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(  # noqa: S603
        ["git", "archive", "--format=tar", revision, "src", "bench"],  # noqa: S607
        cwd=common.ROOT,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)  # noqa: S603,S607
    return into


def measure(tree: Path, dataset: Path, workdir: Path, label: str) -> dict[str, Any]:
    """Throughput's pipeline child, run from `tree` with `tree`/src first on the import path."""
    result = workdir / f"{label}.json"
    command = [
        common.PYTHON,
        str(tree / "bench" / "throughput.py"),
        "--child",
        "--result",
        str(result),
        "--mode",
        "pipeline",
        "--workers",
        str(WORKERS),
        "--dataset",
        str(dataset),
        "--log-file",
        str(workdir / f"{label}.log"),
    ]
    env = {**common.clean_env(), "PYTHONPATH": str(tree / "src")}
    done = subprocess.run(command, env=env, cwd=tree, timeout=1800, check=False)  # noqa: S603
    if done.returncode != 0 or not result.exists():
        raise RuntimeError(f"the {label} run failed with exit code {done.returncode}")
    measured: dict[str, Any] = json.loads(result.read_text())
    return measured


def run(invoices: int, before: str, workdir: Path) -> dict[str, dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    dataset = workdir / "dataset.json"
    dataset.write_text(json.dumps(throughput.dataset_spec(invoices)))
    results = {}
    for label, tree in (("before", export(before, workdir / "before")), ("after", common.ROOT)):
        print(f"  {label} ({before if label == 'before' else 'this tree'}) ...", end="", flush=True)
        results[label] = measure(tree, dataset, workdir, label)
        print(f" {results[label]['seconds']:.1f}s", flush=True)
    results["before"]["revision"] = before
    return results


def per_invoice(result: dict[str, Any]) -> dict[str, float]:
    """Requests per archived invoice by operation (the report's ledger read-back excluded)."""
    invoices = result["invoices"] or 1
    return {name: count / invoices for name, count in result["requests"].items() if name != "dynamodb:Query"}


def report(results: dict[str, dict[str, Any]]) -> None:
    before, after = per_invoice(results["before"]), per_invoice(results["after"])
    for label in ("before", "after"):
        r = results[label]
        complete = r["failed"] == 0 and r["invoices"] == r["dataset_invoices"]
        print(
            f"  {label}: {r['invoices']} of {r['dataset_invoices']} invoices archived"
            f"{'' if complete else ' (incomplete!)'}, {r['seconds']:.1f}s"
        )
    print(f"  {'requests per archived invoice':<40}{'before':>9}{'after':>9}{'change':>9}")
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name, 0.0), after.get(name, 0.0)
        print(f"  {name:<40}{old:9.2f}{new:9.2f}{new - old:+9.2f}")
    aws_before = sum(v for k, v in before.items() if not k.startswith("download:"))
    aws_after = sum(v for k, v in after.items() if not k.startswith("download:"))
    label = "all AWS requests (downloads apart)"
    print(f"  {label:<40}{aws_before:9.2f}{aws_after:9.2f}{aws_after - aws_before:+9.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=400, help="invoices in the dataset (default 400)")
    parser.add_argument("--before", default=BEFORE, help=f"the revision to compare with (default {BEFORE})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp:
        results = run(args.invoices, args.before, Path(tmp))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
