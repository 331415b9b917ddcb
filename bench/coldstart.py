"""Cold start: the handlers' import beside a bare ``import boto3`` plus one client, in one run.

Every sample is a fresh interpreter (``python -c ...``), as Lambda's INIT phase is; the cases take
turns, so a busy machine slows them alike, and the figure is the median of `--repeat` samples. CPU time
(user + system of the child) is printed beside wall time: on a shared machine it is the steadier one.
The environment is Lambda's as far as the imports care: credentials in variables, a region,
LAMBDA_TASK_ROOT (Powertools traces only inside Lambda) and POWERTOOLS_TRACE_DISABLED unless the case
traces.

Cases:
* ``boto3 + s3 client``: the baseline, ``import boto3; boto3.client("s3")``.
* ``fetcher`` / ``lister``: ``import invoice_archiver.handlers.<name>``, tracing off (no X-Ray SDK).
* ``fetcher, tracing on``: the same with Powertools' Tracer, which imports the X-Ray SDK and patches botocore.
* ``fetcher + its clients``: the import plus the four clients its first invocation creates.
* ``... SDK layer``: the same with the stack's own SDK layer (layers/sdk/requirements.lock, built as
  `cdk synth` builds it) first on sys.path, as Lambda puts layers before the runtime's packages.

    .venv/bin/python bench/coldstart.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import common

BASELINE = "import boto3; boto3.client('s3')"
FETCHER = "import invoice_archiver.handlers.fetcher"
LISTER = "import invoice_archiver.handlers.lister"
FETCHER_CLIENTS = (
    "import invoice_archiver.handlers.fetcher as f; from invoice_archiver.dal import clients as c; "
    "c.invoicing('us-east-1', 8, 5.0); c.s3(); c.dynamodb(); c.sqs()"
)
LAMBDA_ENV = {
    "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "example",
    "AWS_SESSION_TOKEN": "example",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "LAMBDA_TASK_ROOT": str(common.ROOT / "src"),
    "AWS_LAMBDA_FUNCTION_NAME": "cold-start-bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    "ARCHIVE_BUCKET": "bench",
    "LEDGER_TABLE": "bench",
    "INVOICE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench",
}


def sdk_layer() -> Path | None:
    """The stack's SDK layer folder (python/...), built as `cdk synth` builds it or taken from its cache.

    In a child process: importing the CDK construct starts jsii's Node runtime, which the figures do not
    need to see."""
    code = (
        "from invoice_archiver.infra.constants import PYTHON_RUNTIME as R\n"
        "from invoice_archiver.infra.sdk_layer import SDK_LOCK_DIR, SDK_LOCK_FILE, build\n"
        "print(build(SDK_LOCK_DIR / SDK_LOCK_FILE, python_version=R.removeprefix('python'),"
        " platform='manylinux2014_aarch64'))"
    )
    done = subprocess.run(  # noqa: S603
        [common.PYTHON, "-c", code], capture_output=True, text=True, check=False, cwd=common.ROOT
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not Path(lines[-1]).is_dir():
        print(f"  (SDK layer unavailable: {(done.stderr.strip().splitlines() or ['?'])[-1]})")
        return None
    return Path(lines[-1])


def layer_size(folder: Path) -> tuple[int, int]:
    """(unzipped bytes, zipped bytes) of a layer folder, zipped as CDK does (deflate)."""
    raw = 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                raw += path.stat().st_size
                archive.write(path, path.relative_to(folder))
    return raw, len(buffer.getvalue())


def sample(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh interpreter running `code`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([common.PYTHON, "-c", code], env=env, check=True)  # noqa: S603
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cases(layer: Path | None) -> list[tuple[str, str, dict[str, str]]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    base.update(LAMBDA_ENV)
    base["PYTHONPATH"] = str(common.ROOT / "src")
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    traced = {**base, "POWERTOOLS_TRACE_DISABLED": "false"}
    chosen = [
        ("boto3 + s3 client", BASELINE, base),
        ("fetcher", FETCHER, base),
        ("lister", LISTER, base),
        ("fetcher, tracing on", FETCHER, traced),
        ("fetcher + its clients", FETCHER_CLIENTS, base),
    ]
    if layer is not None:
        # The layer first, then our code, then the venv (where Powertools and pydantic come from).
        layered = {**base, "PYTHONPATH": os.pathsep.join([str(layer / "python"), str(common.ROOT / "src")])}
        chosen += [
            ("SDK layer: boto3 + s3 client", BASELINE, layered),
            ("SDK layer: fetcher", FETCHER, layered),
            ("SDK layer: lister", LISTER, layered),
        ]
    return chosen


def run(repeat: int, *, layer: bool = True) -> dict[str, Any]:
    folder = sdk_layer() if layer else None
    if folder is None:
        return _run(repeat, None)
    # Import from a copy: the warm-up writes bytecode beside the modules, and in the build cache that would
    # change the content `cdk synth` checks before it reuses the cache (it would rebuild the layer while
    # another synth was copying it).
    with tempfile.TemporaryDirectory(prefix="coldstart-layer-") as temporary:
        copy = Path(temporary)
        shutil.copytree(folder / "python", copy / "python", symlinks=True)
        result = _run(repeat, copy)
    raw, zipped = layer_size(folder)  # as built, without the warm-up's bytecode
    result["layer"].update(path=str(folder), unzipped_bytes=raw, zipped_bytes=zipped)
    return result


def _run(repeat: int, layer: Path | None) -> dict[str, Any]:
    chosen = cases(layer)
    for _name, code, env in chosen:  # warm the page cache and write bytecode once
        sample(code, env)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in chosen}
    for _ in range(repeat):
        for name, code, env in chosen:
            samples[name].append(sample(code, env))
    result: dict[str, Any] = {"repeat": repeat, "cases": {}}
    for name, values in samples.items():
        result["cases"][name] = {
            "wall_ms": 1000 * statistics.median(v[0] for v in values),
            "cpu_ms": 1000 * statistics.median(v[1] for v in values),
        }
    if layer is not None:
        raw, zipped = layer_size(layer)
        result["layer"] = {"path": str(layer), "unzipped_bytes": raw, "zipped_bytes": zipped}
        version = subprocess.run(  # noqa: S603
            [common.PYTHON, "-c", "import botocore; print(botocore.__version__)"],
            env={**os.environ, "PYTHONPATH": str(layer / "python")},
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        result["layer"]["botocore"] = version
    return result


def report(result: dict[str, Any]) -> None:
    rows = result["cases"]
    print(f"  median of {result['repeat']} fresh interpreters each")
    print(f"  {'case':<30}{'wall ms':>9}{'CPU ms':>8}{'x baseline (wall)':>19}{'x baseline (CPU)':>18}")
    for name, row in rows.items():
        base = rows["SDK layer: boto3 + s3 client" if name.startswith("SDK layer") else "boto3 + s3 client"]
        print(
            f"  {name:<30}{row['wall_ms']:9.0f}{row['cpu_ms']:8.0f}"
            f"{row['wall_ms'] / base['wall_ms']:19.2f}{row['cpu_ms'] / base['cpu_ms']:18.2f}"
        )
    if "layer" in result:
        layer = result["layer"]
        print(
            f"  SDK layer (botocore {layer['botocore']}): {layer['unzipped_bytes'] / 1e6:.1f} MB unzipped, "
            f"{layer['zipped_bytes'] / 1e6:.1f} MB zipped (Lambda's limit: 250 MB unzipped for all layers)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    report(run(args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
