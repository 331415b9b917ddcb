"""The sandbox workflow as a person lives it: `invoice-archiver sandbox` in one terminal, `run-local` in
another with nothing but the exported lines; what the pass and the sandbox report; Ctrl-C; packaging."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from invoice_archiver import __version__
from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.faults import FaultInjector, Faults
from tests.cli.conftest import BUCKET, CLI, DATASET, clean_env, field, invoices_of, run_cli
from tests.sandbox_banner import read_banner


@dataclass
class SandboxProcess:
    process: subprocess.Popen[str]
    exports: dict[str, str]
    header: list[str]

    def stop(self) -> str:
        """Ctrl-C, as in its terminal; what it printed from then on."""
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=30)
        assert self.process.returncode == 0
        return out


def start_sandbox(cwd: Path, *options: str) -> SandboxProcess:
    scenario = cwd / "scenario.json"
    scenario.write_text(DATASET.to_json(), encoding="utf-8")
    process = subprocess.Popen(
        [CLI, "sandbox", "--dataset", str(scenario), *options],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    banner = read_banner(process.stdout)
    return SandboxProcess(process, banner.exports, banner.lines)


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[SandboxProcess]:
    box = start_sandbox(tmp_path, "--throttle-rate", "0.3", "--error-rate", "0.1", "--fault-seed", "7")
    yield box
    if box.process.poll() is None:
        box.process.kill()
        box.process.wait()


def test_run_local_on_a_separate_sandbox_needs_only_its_export_lines_and_counts_its_faults(
    sandbox_process: SandboxProcess, tmp_path: Path
) -> None:
    # Given a sandbox that throttles 30 % and fails 10 % of the API calls, and prints what it does
    assert sandbox_process.exports["ACCOUNT_IDS"] == ",".join(DATASET.accounts)
    assert "# faults: throttling 30%, 5xx 10% (fault seed 7)" in sandbox_process.header
    october = invoices_of(DATASET, (2026, 10))
    # (faults are a draw per call index: the GetInvoicePDF calls every run makes, one per invoice, hold both)
    schedule = FaultInjector(Faults(seed=7, throttle_rate=0.3, error_rate=0.1))
    assert {"throttle", "error"} <= {schedule.api_fault("GetInvoicePDF") for _ in october}

    # When run-local runs with nothing but the exported lines, then the sandbox is stopped
    env = clean_env(**sandbox_process.exports)
    result = run_cli(["run-local", "--period", "2026-10"], env, tmp_path)
    served = sandbox_process.stop()

    # Then every invoice of the accounts the sandbox holds is archived
    assert result.returncode == 0, result.stdout + result.stderr
    assert field(result.stdout, "archived now") == len(october)
    # ... the pass counts the throttles and 5xx the SDK absorbed, and its retries, exactly as the sandbox
    # counted them on its side
    throttled = _count(result.stdout, r"throttled \(429\)\s+(\d+)")
    errors = _count(result.stdout, r"server errors \(5xx\)\s+(\d+)")
    retries = _count(result.stdout, r"SDK retries\s+(\d+)")
    assert throttled > 0
    assert errors > 0
    assert retries == throttled + errors
    assert f"throttled {throttled} (TPS 0), 5xx {errors}," in served
    assert re.search(r"GetInvoicePDF \d+, ListInvoiceSummaries \d+", served)
    # ... and the functions' warnings and logs stay out of the terminal
    assert "No application metrics to publish" not in result.stderr
    assert "function_request_id" not in result.stdout + result.stderr


def test_run_local_says_why_a_period_lists_nothing(sandbox_process: SandboxProcess, tmp_path: Path) -> None:
    # Given the sandbox's accounts, with invoices for August to October 2026 only
    env = clean_env(**sandbox_process.exports)
    this_month = time.strftime("%Y-%m", time.gmtime())

    # When a month that has not ended, and a month without invoices, are run
    current = run_cli(["run-local", "--period", this_month], env, tmp_path)
    empty = run_cli(["run-local", "--period", "2026-05"], env, tmp_path)

    # Then each says why nothing was listed
    assert current.returncode == 0
    assert f"Nothing listed: {this_month} has not ended yet" in current.stdout
    assert empty.returncode == 0
    assert "Nothing listed: the Invoicing API has no invoices for accounts 123456789012" in empty.stdout
    assert "check ACCOUNT_IDS and RECEIVER_ROLES" in empty.stdout


def test_run_local_counts_copies_and_logs_complete_invoices_per_run(
    tmp_path: Path, aws_credentials: None
) -> None:
    # Given a separate sandbox with October archived once, and an invoice folder left without summary.json
    box = start_sandbox(tmp_path)
    env = clean_env(**box.exports)
    try:
        first = run_cli(["run-local", "--period", "2026-10"], env, tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        first_log = (tmp_path / ".local" / "run-local.log").read_text(encoding="utf-8")
        s3 = boto3.client("s3", endpoint_url=box.exports["AWS_ENDPOINT_URL"], region_name="us-east-1")
        half = "invoices/account=123456789012/period=2026-10/E-HALF/invoice.pdf"
        s3.put_object(Bucket=BUCKET, Key=half, Body=b"%PDF")

        # When run-local runs again and copies the archive
        second = run_cli(["run-local", "--period", "2026-10", "--out", "copy"], env, tmp_path)
    finally:
        box.stop()

    # Then the tree counts only complete invoices, and says how many folders are not
    assert second.returncode == 0, second.stdout + second.stderr
    per_account = len(invoices_of(DATASET, (2026, 10))) // len(DATASET.accounts)
    assert f"account=123456789012/period=2026-10/  ({per_account} invoices)" in second.stdout
    assert "+ 1 invoice folder without summary.json (incomplete, not counted)" in second.stdout
    # ... its object lines are aligned: every size ends in the same column
    object_lines = [line for line in second.stdout.splitlines() if re.match(r"^ {6}\S.* \d+ bytes$", line)]
    assert len(object_lines) > 3
    assert len({len(line) for line in object_lines}) == 1
    # ... the copy holds the complete invoices only
    copied = {p.parent.name for p in (tmp_path / "copy").rglob("summary.json")}
    assert len(copied) == len(invoices_of(DATASET, (2026, 10)))
    assert not list((tmp_path / "copy").rglob("E-HALF"))
    # ... and the function log holds this run only; the previous run's is kept beside it
    log = tmp_path / ".local" / "run-local.log"
    assert (tmp_path / ".local" / "run-local.log.1").read_text(encoding="utf-8") == first_log
    assert log.stat().st_size > 0
    assert not log.read_text(encoding="utf-8").startswith(first_log[:200])


def test_a_generated_sandbox_serves_the_periods_run_local_lists_by_default(tmp_path: Path) -> None:
    # Given `sandbox --seed 5` without --periods, as the README's walk-through starts it
    process = subprocess.Popen(
        [CLI, "sandbox", "--seed", "5", "--invoices-per-period", "1"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = read_banner(process.stdout)
        exports, header = banner.exports, banner.lines

        # When run-local runs in another shell without --period (what a scheduled run lists today)
        result = run_cli(["run-local"], clean_env(**exports), tmp_path)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)

    # Then it lists exactly the periods the sandbox serves, and every invoice of them
    [dataset] = [line for line in header if line.startswith("# dataset:")]
    served = dataset.rsplit("billing periods: ", 1)[1].strip()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Pass 1: periods {served};" in result.stdout
    assert field(result.stdout, "invoices listed") == 3 * 3  # accounts x periods x 1


def test_ctrl_c_stops_run_local_cleanly(tmp_path: Path) -> None:
    # Given run-local on its own sandbox with enough invoices to take a while
    scenario = tmp_path / "many.json"
    scenario.write_text(generate(seed=9, periods=((2026, 10),), invoices_per_account_period=120).to_json())
    process = subprocess.Popen(
        [CLI, "run-local", "--period", "2026-10", "--dataset", str(scenario)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C in a terminal reaches the whole process group
    )
    assert process.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 300  # generous: a loaded 2-core machine starts the sandbox slowly
    while not any(line.startswith("pass 1: ") for line in lines) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(line.startswith("pass 1: ") for line in lines), "run-local never reported progress"
    assert process.poll() is None, "run-local finished before it could be interrupted"

    # When Ctrl-C is pressed while the fetchers work
    interrupted = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=60)
    reader.join(10)

    # Then it stops within the grace period, exit code 130, one line saying so, and no traceback
    assert process.returncode == 130
    assert time.monotonic() - interrupted < 35
    errors = [line for line in lines if not line.startswith("pass 1: ")]
    assert errors == ["invoice-archiver run-local: interrupted\n"], "".join(lines)


def test_version() -> None:
    result = run_cli(["--version"], clean_env(), Path.cwd())
    assert result.returncode == 0
    assert result.stdout.strip() == f"invoice-archiver {__version__}"


def test_without_the_local_extra_the_cli_works_and_the_sandbox_says_what_to_install(tmp_path: Path) -> None:
    # Given an installation without the [local] extra: moto and werkzeug cannot be imported
    for missing in ("moto", "werkzeug"):
        (tmp_path / missing).mkdir()
        (tmp_path / missing / "__init__.py").write_text(
            f'raise ModuleNotFoundError("No module named {missing}", name="{missing}")\n'
        )
    env = clean_env(PYTHONPATH=str(tmp_path))

    # When the commands that need no sandbox, and those that do, are run
    version = run_cli(["--version"], env, tmp_path)
    help_text = run_cli(["verify", "--help"], env, tmp_path)
    sandbox = run_cli(["sandbox"], env, tmp_path)
    run_local = run_cli(["run-local"], env, tmp_path)

    # Then the first work, and the others say in one line which extra to install
    assert version.returncode == 0
    assert help_text.returncode == 0
    assert "--json" in help_text.stdout
    for result in (sandbox, run_local):
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1
        assert "pip install 'invoice-archiver[local]'" in result.stderr


def _count(output: str, pattern: str) -> int:
    match = re.search(pattern, output)
    assert match is not None, output
    return int(match.group(1))


def test_make_demo_needs_only_the_venv_and_never_fetches_node() -> None:
    # Given the Makefile; When make works out what `demo` and `synth` would run (-n: nothing runs)
    root = Path(__file__).resolve().parents[2]
    make = shutil.which("make")
    assert make is not None

    def node_bin(goal: str) -> list[str]:
        database = subprocess.run(
            [make, "-n", "-p", goal], cwd=root, capture_output=True, text=True, timeout=120, check=False
        ).stdout
        return [line for line in database.splitlines() if line.startswith("NODE_BIN :=")]

    # Then `demo` never looks for Node (scripts/ensure-node.sh would install 185 MB of it), `synth` does
    assert node_bin("demo") == []
    assert node_bin("lint") == []
    assert len(node_bin("synth")) == 1
