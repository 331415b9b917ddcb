"""The product as a person runs it: `invoice-archiver run-local`, on its own sandbox or on endpoints
served by `invoice-archiver sandbox` in another process. Nothing is mocked; only subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest

from invoice_archiver.sandbox.dataset import generate
from tests.sandbox_banner import read_banner

ROOT = Path(__file__).resolve().parents[2]
DATASET = generate(seed=31, periods=((2026, 9), (2026, 10)), invoices_per_account_period=8, awkward_ids=True)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in _PIPELINE_VARS}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    return env


_PIPELINE_VARS = {
    "ARCHIVE_BUCKET",
    "LEDGER_TABLE",
    "INVOICE_QUEUE_URL",
    "DEAD_LETTER_QUEUE_URL",
    "LISTING_QUEUE_URL",
    "ACCOUNT_IDS",
    "RECEIVER_ROLES",
    "LOOKBACK_PERIODS",
}


def _run_local(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoice_archiver.cli.main", "run-local", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _field(output: str, label: str, occurrence: int = 0) -> int:
    values = [int(line.split()[-1]) for line in output.splitlines() if line.strip().startswith(label)]
    return values[occurrence]


@pytest.fixture
def dataset_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(DATASET.to_json())
    return path


def test_run_local_archives_a_period_copies_it_out_and_a_second_pass_archives_nothing(
    tmp_path: Path, dataset_file: Path
) -> None:
    # Given a fresh working directory and a scenario of 3 accounts with awkward invoice ids
    out = tmp_path / "archive"
    october = [i for i in DATASET.invoices if i.billing_period == (2026, 10)]

    # When a person runs the pipeline for October twice and asks for a copy of the archive
    result = _run_local(
        ["--period", "2026-10", "--dataset", str(dataset_file), "--passes", "2", "--out", str(out)],
        _clean_env(),
        tmp_path,
    )

    # Then it succeeds, the first pass archives every October invoice and the second nothing
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    assert _field(output, "invoices listed") == len(october)
    assert _field(output, "archived now", 0) == len(october)
    assert _field(output, "archived now", 1) == 0
    assert _field(output, "skipped (had them)", 1) == len(october)
    assert "Nothing new: every listed invoice was already archived." in output
    # ... the copy holds one summary.json per invoice, all inside the chosen folder, PDFs that open
    summaries = list(out.rglob("summary.json"))
    assert len(summaries) == len(october)
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())
    ids = {json.loads(p.read_text())["invoice_id"] for p in summaries}
    assert ids == {i.invoice_id for i in october}
    pdf = next(out.rglob("invoice.pdf"))
    assert pypdf.PdfReader(pdf).pages[0].extract_text()
    # ... and the function logs went to the log file, not the terminal
    assert "function_request_id" not in output
    assert (tmp_path / ".local" / "run-local.log").stat().st_size > 0


@pytest.fixture
def sandbox_process(dataset_file: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """`invoice-archiver sandbox` in its own process, as a person would start it in another terminal."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoice_archiver.cli.main", "sandbox", "--dataset", str(dataset_file)],
        cwd=tmp_path,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield read_banner(proc.stdout).exports
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_run_local_against_a_separate_sandbox_archives_once_across_runs(
    sandbox_process: dict[str, str], tmp_path: Path
) -> None:
    # Given a sandbox in another process, and the exported endpoint variables
    env = {**_clean_env(), **sandbox_process}
    assert "AWS_ENDPOINT_URL" in env
    assert "AWS_ENDPOINT_URL_INVOICING" in env
    env["ACCOUNT_IDS"] = ",".join(DATASET.accounts)
    september = [i for i in DATASET.invoices if i.billing_period == (2026, 9)]

    # When run-local runs against those endpoints, and then runs again as a new process
    first = _run_local(["--period", "2026-09"], env, tmp_path)
    second = _run_local(["--period", "2026-09"], env, tmp_path)

    # Then the first run archives every invoice and the second finds them all archived
    assert first.returncode == 0, first.stdout + first.stderr
    assert "the endpoints in AWS_ENDPOINT_URL" in first.stdout
    assert _field(first.stdout, "archived now") == len(september)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _field(second.stdout, "archived now") == 0
    assert _field(second.stdout, "skipped (had them)") == len(september)
    assert "Nothing new" in second.stdout


def test_run_local_refuses_bad_configuration_with_a_clear_message(tmp_path: Path, dataset_file: Path) -> None:
    # Given a bad look-back value in the environment
    env = {**_clean_env(), "LOOKBACK_PERIODS": "many"}

    # When run-local starts
    result = _run_local(["--dataset", str(dataset_file)], env, tmp_path)

    # Then it stops before doing anything, naming the variable
    assert result.returncode == 2
    assert "LOOKBACK_PERIODS" in result.stderr
