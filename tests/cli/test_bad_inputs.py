"""Every ordinary mistake: one line on stderr naming what to fix, the right exit code, nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from invoice_archiver.sandbox.faults import Faults
from tests.cli.conftest import BUCKET, Local, clean_env, run_cli

SUMMARY = {
    "AccountId": "123456789012",
    "InvoiceId": "E-1",
    "IssuedDate": "2026-10-02T08:00:00Z",
    "BillingPeriod": {"Year": 2026, "Month": 9},
    "InvoiceType": "INVOICE",
}
FILES = {
    "broken.json": '{"invoices": [',
    "mistyped.json": json.dumps({"invoice": [{"summary": SUMMARY}]}),
    "month13.json": json.dumps(
        {"invoices": [{"summary": {**SUMMARY, "BillingPeriod": {"Year": 2026, "Month": 13}}}]}
    ),
    "unknown-type.json": json.dumps({"invoices": [{"summary": {**SUMMARY, "InvoiceType": "BILL"}}]}),
    "a-file": "not a folder",
}


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    says: str
    sandbox: bool = False  # run against a sandbox's endpoints
    env: dict[str, str] = field(default_factory=dict)
    faults: Faults | None = None
    may_write: tuple[str, ...] = ()  # a run that started keeps its function log


CASES = {
    "dataset missing": Case(
        ("run-local", "--dataset", "missing.json"), 2, "--dataset missing.json: no such file"
    ),
    "dataset broken": Case(("run-local", "--dataset", "broken.json"), 2, "not valid JSON (line 1, column 15"),
    "dataset mistyped": Case(("run-local", "--dataset", "mistyped.json"), 2, "unknown key 'invoice'"),
    "dataset month 13": Case(
        ("run-local", "--dataset", "month13.json"),
        2,
        "summary.BillingPeriod.Month: must have value less than",
    ),
    "dataset unknown InvoiceType": Case(
        ("sandbox", "--dataset", "unknown-type.json"), 2, "summary.InvoiceType: must be one of [INVOICE,"
    ),
    "out is a file": Case(("run-local", "--out", "a-file"), 2, "--out a-file: is a file; name a folder"),
    "out is empty": Case(("run-local", "--out", ""), 2, "--out needs a folder name"),
    "status --table nope": Case(
        ("status", "--table", "nope"), 2, "ledger table 'nope' not found", sandbox=True
    ),
    "stale endpoint": Case(
        ("status",), 2, "cannot reach http://127.0.0.1:9", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    ),
    "stale endpoint, run-local": Case(
        ("run-local", "--out", "copy"),
        2,
        "is the sandbox still running?",
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
    ),
    "no credentials": Case(
        ("status",), 2, "no AWS credentials", env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    ),
    "throttle rate 1.5": Case(
        ("sandbox", "--throttle-rate", "1.5"), 2, "--throttle-rate: 1.5 is not between 0 and 1"
    ),
    "tps limit -1": Case(("sandbox", "--tps-limit", "-1"), 2, "--tps-limit: -1 is below 1"),
    "total throttling": Case(
        ("run-local", "--period", "2026-10", "--out", "copy"),
        1,
        "ListInvoiceSummaries kept failing after the SDK's retries (ThrottlingException",
        sandbox=True,
        env={"INVOICING_MAX_ATTEMPTS": "2"},
        faults=Faults(throttle_rate=1.0),
        may_write=(".local", ".local/run-local.log"),
    ),
    "spool directory missing": Case(
        ("run-local",),
        2,
        "SPOOL_DIRECTORY: /nonexistent is not an existing directory",
        env={"SPOOL_DIRECTORY": "/nonexistent"},
    ),
    "backfill nowhere": Case(
        ("backfill", "--from", "2026-09", "--to", "2026-10"), 2, "name where to archive: --stack"
    ),
    "backfill from without to": Case(("backfill", "--from", "2026-09"), 2, "--from and --to go together"),
    "backfill period 13": Case(
        ("backfill", "--from", "2026-13", "--to", "2026-14"), 2, "not a billing period: 2026-13"
    ),
    "backfill unknown stack": Case(
        ("backfill", "--stack", "Nope", "--invoice-id", "E-1"), 2, "stack Nope not found", sandbox=True
    ),
    "verify unknown bucket": Case(
        ("verify",), 2, "bucket 'nope-bucket' not found", sandbox=True, env={"ARCHIVE_BUCKET": "nope-bucket"}
    ),
    "report to a folder": Case(
        ("report", "--period", "2026-10", "--output", "."), 2, "--output .: is a folder"
    ),
    "report period 13": Case(("report", "--period", "2026-13"), 2, "not a billing period: 2026-13"),
    "workers 0": Case(("run-local", "--workers", "0"), 2, "--workers and --passes must be at least 1"),
}


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_mistake_is_one_line_with_the_right_exit_code_and_nothing_written(
    case: Case, make_local: Callable[..., Local], tmp_path: Path
) -> None:
    # Given a working directory with the files a person might point at, and maybe a sandbox
    work = tmp_path / "mistake"
    work.mkdir()
    for name, text in FILES.items():
        (work / name).write_text(text, encoding="utf-8")
    env = clean_env()
    local = None
    if case.sandbox:
        local = make_local(faults=case.faults)
        env = dict(local.env)
    for name, value in case.env.items():
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    before = _files(work)

    # When the command runs
    result = run_cli(list(case.args), env, work, timeout=120)

    # Then it fails with one line naming the problem, no traceback, and the right exit code
    assert result.returncode == case.code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert case.says in result.stderr, result.stderr
    # ... and nothing was written: no file here, nothing in the archive
    assert _files(work) - before <= set(case.may_write)
    if local is not None and _bucket_exists(local):
        assert local.object_keys() == []


def _bucket_exists(local: Local) -> bool:
    names = {b["Name"] for b in local.client("s3").list_buckets()["Buckets"]}
    return BUCKET in names
