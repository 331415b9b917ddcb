"""bench/daily.py seeds a ledger as the fetcher writes it and runs the unchanged daily schedule over it.
It is a figure, not a test of speed; this test only keeps the script working (it once broke unseen when
messages became pointers) and holds what its figure rests on: an unchanged day sends and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_daily_bench_runs_and_an_unchanged_day_sends_and_writes_nothing(tmp_path: Path) -> None:
    # Given the bench script, as make bench runs it (its own sandbox, its own child process)
    result_file = tmp_path / "daily.json"

    # When it runs the daily schedule over a ledger of about 100 archived invoices
    done = subprocess.run(
        [sys.executable, "bench/daily.py", "--invoices", "100", "--json", str(result_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    # Then it prints its figure, and the run it measured listed everything and sent and wrote nothing
    assert done.returncode == 0, done.stdout + done.stderr
    assert "daily run over" in done.stdout
    result = json.loads(result_file.read_text())
    assert result["listed"] == result["invoices"] > 0
    assert result["messages_sent"] == 0
    assert result["get_invoice_pdf_calls"] == 0
    assert result["dynamodb_writes"] == 0
    assert result["s3_writes"] == 0
