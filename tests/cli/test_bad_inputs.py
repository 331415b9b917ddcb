"""Every ordinary mistake, broken setting and hostile environment, through the real console script in a
subprocess: one line naming what to fix, the documented exit code, never a traceback, nothing written.

Exit codes: 2 a usage or configuration error (a bad option, a broken AWS configuration, an endpoint that
does not answer, a file or disk that cannot be written); 1 a request that found something wrong (an id no
source lists, a verify or report that matched nothing). Progress lines ("label: n/m unit") may come
before the one line; nothing else may.
"""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from invoice_archiver.sandbox.faults import Faults
from tests.cli.conftest import BUCKET, CLI, Deployed, Local, clean_env, run_cli

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
    "broken-aws-config": "[default\nregion = us-east-1\n",
    "earlier.csv": "a report from before\n",
}
PROGRESS = re.compile(r"^[a-z][\w ()']*: \d+(/\d+)? (queries|invoices|objects)\b")
SENDS = {("sqs", "SendMessage"), ("sqs", "SendMessageBatch")}


def _symlink(work: Path) -> None:
    (work / "link.csv").symlink_to(work / "earlier.csv")


def _fifo(work: Path) -> None:
    os.mkfifo(work / "fifo")


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    says: str
    sandbox: bool = False  # run against a sandbox's endpoints
    archived: bool = False  # ... whose September and October a backfill archived first
    stack: bool = False  # against a stack (its lister and fetcher in the test, the command through a proxy)
    deny: frozenset[tuple[str, str]] = frozenset()  # what IAM refuses the operator, on a stack
    env: dict[str, str] = field(default_factory=dict)
    faults: Faults | None = None
    setup: Callable[[Path], None] | None = None
    stdout_to: str | None = None  # e.g. /dev/full: a full disk behind stdout
    file_size_limit: int | None = None  # RLIMIT_FSIZE: a disk that fills up (writes past it fail)
    where: str = "stderr"  # where the one line is: a code-1 finding is reported on stdout
    may_write: tuple[str, ...] = ()  # a run that started keeps its function log


LOG = (".local", ".local/backfill.log")
CASES = {
    # --- files a person points at -----------------------------------------------------------------
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
    "log file under a file": Case(
        ("run-local", "--log-file", "a-file/run.log"), 2, "--log-file a-file/run.log: cannot create it in"
    ),
    "log file where nothing may be written": Case(
        ("backfill", "--invoice-id", "E-1", "--log-file", "/sys/kernel/invoice-archiver.log"),
        2,
        "--log-file /sys/kernel/invoice-archiver.log: cannot write there",
        sandbox=True,
    ),
    "report to a folder": Case(
        ("report", "--period", "2026-10", "--output", "."), 2, "--output .: is a folder"
    ),
    "report over an existing file": Case(
        ("report", "--period", "2026-10", "--output", "earlier.csv"),
        2,
        "--output earlier.csv: exists; pass --force to replace it",
    ),
    "report through a symbolic link, even with --force": Case(
        ("report", "--period", "2026-10", "--output", "link.csv", "--force"),
        2,
        "--output link.csv: is a symbolic link",
        setup=_symlink,
    ),
    "report into a FIFO": Case(
        ("report", "--period", "2026-10", "--output", "fifo"),
        2,
        "--output fifo: not a regular file",
        setup=_fifo,
    ),
    "report --force without --output": Case(
        ("report", "--period", "2026-10", "--force"), 2, "--force replaces an --output file; there is none"
    ),
    # --- a full disk ------------------------------------------------------------------------------
    "status > /dev/full": Case(
        ("status",),
        2,
        "cannot write the output: No space left on device",
        archived=True,
        stdout_to="/dev/full",
    ),
    "report > /dev/full": Case(
        ("report", "--period", "2026-10"),
        2,
        "cannot write the output: No space left on device",
        archived=True,
        stdout_to="/dev/full",
    ),
    "verify --json > /dev/full": Case(
        ("verify", "--json"),
        2,
        "cannot write the output: No space left on device",
        archived=True,
        stdout_to="/dev/full",
    ),
    "report --output on a full disk": Case(
        ("report", "--period", "2026-10", "--output", "october.csv"),
        2,
        "--output october.csv: cannot write it (File too large); nothing was written",
        archived=True,
        file_size_limit=1000,
    ),
    "run-local --out on a full disk": Case(
        ("run-local", "--period", "2026-10", "--out", "copy", "--log-file", "/dev/null"),
        2,
        "--out copy: cannot copy the archive (File too large); nothing was written",
        archived=True,
        file_size_limit=1000,
    ),
    # --- AWS configuration ------------------------------------------------------------------------
    "stale profile": Case(
        ("status",),
        2,
        "The config profile (nope) could not be found: check AWS_PROFILE",
        env={"AWS_PROFILE": "nope"},
    ),
    "malformed AWS config file": Case(
        ("status",),
        2,
        "AWS configuration: Unable to parse config file: broken-aws-config",
        env={"AWS_CONFIG_FILE": "broken-aws-config", "AWS_PROFILE": "default"},
    ),
    "endpoint that is not a URL": Case(
        ("status",), 2, "AWS_ENDPOINT_URL=notaurl is not a URL", env={"AWS_ENDPOINT_URL": "notaurl"}
    ),
    "invoicing endpoint that is not a URL": Case(
        ("run-local",),
        2,
        "AWS_ENDPOINT_URL_INVOICING=http:// is not a URL",
        env={"AWS_ENDPOINT_URL_INVOICING": "http://"},
    ),
    "no region": Case(
        ("status", "--stack", "Archiver"),
        2,
        "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION",
        env={"AWS_DEFAULT_REGION": ""},
    ),
    "a region that is not one": Case(
        ("status",), 2, "AWS configuration: Provided region_name 'us east'", env={"AWS_REGION": "us east"}
    ),
    "AWS_MAX_ATTEMPTS not a number": Case(
        ("status",), 2, "AWS_MAX_ATTEMPTS=abc is not a whole number", env={"AWS_MAX_ATTEMPTS": "abc"}
    ),
    "no credentials": Case(
        ("status",), 2, "no AWS credentials", env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    ),
    # --- endpoints --------------------------------------------------------------------------------
    "stale endpoint": Case(
        ("status",), 2, "cannot reach http://127.0.0.1:9", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    ),
    "stale endpoint, run-local": Case(
        ("run-local", "--out", "copy"),
        2,
        "is the sandbox still running?",
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
    ),
    "endpoint that accepts and never answers": Case(
        ("status",), 2, "endpoint not answering: http://127.0.0.1:{silent}/", env={"AWS_MAX_ATTEMPTS": "1"}
    ),
    "status --table nope": Case(
        ("status", "--table", "nope"), 2, "ledger table 'nope' not found", sandbox=True
    ),
    "verify unknown bucket": Case(
        ("verify",), 2, "bucket 'nope-bucket' not found", sandbox=True, env={"ARCHIVE_BUCKET": "nope-bucket"}
    ),
    "total throttling": Case(
        ("run-local", "--period", "2026-10", "--out", "copy"),
        1,
        "ListInvoiceSummaries kept failing after the SDK's retries (ThrottlingException",
        sandbox=True,
        env={"INVOICING_MAX_ATTEMPTS": "2"},
        faults=Faults(throttle_rate=1.0),
        may_write=(".local", ".local/run-local.log"),
    ),
    "invoicing failures name the invoicing endpoint": Case(
        ("backfill", "--from", "2026-10", "--to", "2026-10"),
        1,
        "; AWS_ENDPOINT_URL_INVOICING=http://127.0.0.1:",
        sandbox=True,
        env={"INVOICING_MAX_ATTEMPTS": "2"},
        faults=Faults(throttle_rate=1.0),
        may_write=LOG,
    ),
    # --- the sandbox ------------------------------------------------------------------------------
    "throttle rate 1.5": Case(
        ("sandbox", "--throttle-rate", "1.5"), 2, "--throttle-rate: 1.5 is not between 0 and 1"
    ),
    "tps limit -1": Case(("sandbox", "--tps-limit", "-1"), 2, "--tps-limit: -1 is below 1"),
    "sandbox on a port in use": Case(
        ("sandbox", "--port", "{busy}"), 2, "--port {busy}: in use on 127.0.0.1"
    ),
    "sandbox emulator on a port in use": Case(
        ("sandbox", "--invoicing-port", "{busy}"), 2, "--invoicing-port {busy}: in use on 127.0.0.1"
    ),
    "sandbox on an address that is not this machine's": Case(
        ("sandbox", "--host", "192.0.2.1"), 2, "--host 192.0.2.1: cannot listen there"
    ),
    "sandbox ports that collide": Case(
        ("sandbox", "--port", "5999", "--invoicing-port", "5999"),
        2,
        "--port and --invoicing-port must differ",
    ),
    # --- options ----------------------------------------------------------------------------------
    "spool directory missing": Case(
        ("run-local",),
        2,
        "SPOOL_DIRECTORY: /nonexistent is not an existing directory",
        env={"SPOOL_DIRECTORY": "/nonexistent"},
    ),
    "environment error without pydantic's prefix": Case(
        ("status",),
        2,
        "invalid configuration: SOURCE_ROLE_ARNS: 'nope': not an IAM role ARN",
        env={"SOURCE_ROLE_ARNS": "nope"},
    ),
    "workers 0": Case(("run-local", "--workers", "0"), 2, "argument --workers: 0 is below 1"),
    "run-local period not begun": Case(("run-local", "--period", "2099-01"), 2, "2099-01 has not begun"),
    "empty stack": Case(("verify", "--stack", ""), 2, "argument --stack: needs a stack name (it is empty)"),
    "status stuck after -1": Case(
        ("status", "--stuck-after", "-1"), 2, "argument --stuck-after: -1 is below 0"
    ),
    "status account abc": Case(("status", "--account", "abc"), 2, "'abc' is not a 12-digit account id"),
    "verify account 12": Case(("verify", "--account", "12"), 2, "'12' is not a 12-digit account id"),
    "report account abc": Case(
        ("report", "--period", "2026-10", "--account", "abc"), 2, "'abc' is not a 12-digit account id"
    ),
    "verify period not begun": Case(("verify", "--period", "2099-01"), 2, "2099-01 has not begun"),
    "report period 13": Case(("report", "--period", "2026-13"), 2, "not a billing period: 2026-13"),
    "verify matched nothing": Case(
        ("verify", "--period", "2026-08"),
        1,
        "Nothing to verify: no archived invoice for accounts 123456789012, 210987654321, 345678901234 "
        "in 2026-08",
        archived=True,
    ),
    "report matched nothing": Case(
        ("report", "--period", "2026-08"), 1, "Report 2026-08: no complete invoice", archived=True
    ),
    # --- backfill ---------------------------------------------------------------------------------
    "backfill nowhere": Case(
        ("backfill", "--from", "2026-09", "--to", "2026-10"), 2, "name where to archive: --stack"
    ),
    "backfill from without to": Case(("backfill", "--from", "2026-09"), 2, "--from and --to go together"),
    "backfill to before from": Case(
        ("backfill", "--from", "2026-10", "--to", "2026-09"),
        2,
        "--to 2026-09 is before --from 2026-10 (both are included)",
    ),
    "backfill period 13": Case(
        ("backfill", "--from", "2026-13", "--to", "2026-14"), 2, "not a billing period: 2026-13"
    ),
    "backfill from a period not begun": Case(
        ("backfill", "--from", "2099-01", "--to", "2099-01"), 2, "--from 2099-01 has not begun"
    ),
    "backfill issued after today": Case(
        ("backfill", "--issued-from", "2099-01-01", "--issued-to", "2099-02-01"), 2, "is after today"
    ),
    "backfill invoice id with a period range": Case(
        ("backfill", "--invoice-id", "E-1", "--from", "2026-09", "--to", "2026-09"),
        2,
        "--invoice-id names invoices; it goes alone, without --from or --to",
    ),
    "backfill invoice id with recheck": Case(
        ("backfill", "--invoice-id", "E-1", "--recheck"), 2, "--invoice-id re-archives"
    ),
    "backfill accounts abc": Case(
        ("backfill", "--from", "2026-09", "--to", "2026-09", "--accounts", "abc"),
        2,
        "not 12-digit account ids: abc",
    ),
    "backfill timeout -5": Case(
        ("backfill", "--stack", "Archiver", "--from", "2026-09", "--to", "2026-09", "--timeout", "-5"),
        2,
        "argument --timeout: -5 is not a positive number of seconds",
    ),
    "backfill --no-wait without a stack": Case(
        ("backfill", "--from", "2026-09", "--to", "2026-09", "--no-wait"),
        2,
        "--no-wait is for a backfill on a stack",
        sandbox=True,
    ),
    "backfill --workers on a stack": Case(
        ("backfill", "--stack", "Archiver", "--invoice-id", "E-1", "--workers", "2"),
        2,
        "--workers is for a backfill on a sandbox's endpoints",
    ),
    "backfill unknown stack": Case(
        ("backfill", "--stack", "Nope", "--invoice-id", "E-1"), 2, "stack Nope not found", sandbox=True
    ),
    "backfill of an id no source lists": Case(
        ("backfill", "--invoice-id", "NOPE-1"),
        1,
        "! not found: NOPE-1: no source of this archive lists it",
        sandbox=True,
        where="stdout",
        may_write=LOG,
    ),
    "backfill on a stack whose lister refuses the request": Case(
        ("backfill", "--stack", "Archiver", "--from", "2025-01", "--to", "2025-07", "--roles", "BUYER"),
        2,
        "the stack's lister refused the request: ReceiverRole data starts 2025-06-01",
        stack=True,
    ),
    "backfill on a stack without lambda:InvokeFunction": Case(
        ("backfill", "--stack", "Archiver", "--from", "2026-10", "--to", "2026-10"),
        2,
        "access denied to lambda:InvokeFunction on",
        stack=True,
        deny=frozenset({("lambda", "Invoke")}),
    ),
}


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def listener() -> Iterator[Callable[[], int]]:
    """Factory: a port that accepts connections (the kernel completes them) and never answers."""
    sockets: list[socket.socket] = []

    def make() -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sockets.append(sock)
        port: int = sock.getsockname()[1]
        return port

    yield make
    for sock in sockets:
        sock.close()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_mistake_is_one_line_with_the_right_exit_code_and_nothing_written(
    case: Case,
    make_local: Callable[..., Local],
    request: pytest.FixtureRequest,
    listener: Callable[[], int],
    tmp_path: Path,
) -> None:
    # Given a working directory with the files a person might point at, and maybe a sandbox or a stack
    work = tmp_path / "mistake"
    work.mkdir()
    for name, text in FILES.items():
        (work / name).write_text(text, encoding="utf-8")
    if case.setup is not None:
        case.setup(work)
    env = clean_env()
    local = None
    if case.stack:
        deployed: Deployed = request.getfixturevalue("deployed")
        deployed.proxy.deny |= case.deny | SENDS  # and the command never sends to the stack's queues
        local = deployed.local
        env = {**local.env, "AWS_ENDPOINT_URL": deployed.proxy.url}
    elif case.sandbox or case.archived:
        local = make_local(faults=case.faults)
        env = dict(local.env)
        if case.archived:
            assert local.cli("backfill", "--from", "2026-09", "--to", "2026-10").returncode == 0
    ports = {"silent": listener(), "busy": listener()}
    if "{silent}" in case.says:
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{ports['silent']}"
    for name, value in case.env.items():
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    args = [arg.format(**ports) for arg in case.args]
    says = case.says.format(**ports)
    before = _files(work)

    # When the command runs
    result = _run(args, env, work, case)

    # Then it fails with one line naming the problem (after progress lines, if any), no traceback, and
    # the right exit code
    assert result.returncode == case.code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not PROGRESS.match(line)]
    assert len(lines) == (0 if case.where == "stdout" else 1), result.stderr
    assert says in (result.stdout if case.where == "stdout" else lines[0]), result.stdout + result.stderr
    # ... and nothing was written: no file here, nothing in the archive (but what a backfill archived first)
    assert _files(work) - before <= set(case.may_write)
    if local is not None and not case.archived and _bucket_exists(local):
        assert local.object_keys() == []


def _run(args: list[str], env: dict[str, str], cwd: Path, case: Case) -> subprocess.CompletedProcess[str]:
    if case.stdout_to is None and case.file_size_limit is None:
        return run_cli(args, env, cwd, timeout=120)
    limit = case.file_size_limit

    def limited() -> None:  # in the child, before exec: files it writes may not grow past `limit`
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    sink = open(case.stdout_to, "w") if case.stdout_to else None  # noqa: SIM115 - closed below
    try:
        completed = subprocess.run(
            [CLI, *args],
            env=env,
            cwd=cwd,
            stdout=sink if sink is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=limited,
        )
    finally:
        if sink is not None:
            sink.close()
    return subprocess.CompletedProcess(
        completed.args, completed.returncode, completed.stdout or "", completed.stderr
    )


def _bucket_exists(local: Local) -> bool:
    names = {b["Name"] for b in local.client("s3").list_buckets()["Buckets"]}
    return BUCKET in names


# --- what must work whatever the configuration ----------------------------------------------------

COMMANDS = ("", "sandbox", "run-local", "backfill", "status", "verify", "report")
BROKEN = {
    "stale profile": {"AWS_PROFILE": "nope"},
    "malformed config": {"AWS_CONFIG_FILE": "broken-aws-config", "AWS_PROFILE": "default"},
    "endpoint not a URL": {"AWS_ENDPOINT_URL": "notaurl"},
    "no region": {"AWS_DEFAULT_REGION": ""},
}


@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_help_works_whatever_the_aws_configuration(broken: dict[str, str], tmp_path: Path) -> None:
    # Given a shell whose AWS configuration is broken
    (tmp_path / "broken-aws-config").write_text(FILES["broken-aws-config"], encoding="utf-8")
    env = {k: v for k, v in clean_env(**broken).items() if v}

    for command in COMMANDS:
        # When a person asks for help on any command
        result = run_cli([command, "--help"] if command else ["--help"], env, tmp_path, timeout=60)

        # Then the help is printed and nothing fails: the SDK's self-check is not on that path
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.startswith("usage: invoice-archiver"), command
        assert result.stderr == "", (command, result.stderr)


def test_a_working_folder_that_cannot_hold_the_log_is_not_fatal(local: Local) -> None:
    # Given a working folder where `.local` is a file (the log's folder cannot be made there)
    (local.cwd / ".local").write_text("not a folder", encoding="utf-8")

    # When October is backfilled
    result = local.cli("backfill", "--from", "2026-10", "--to", "2026-10")

    # Then the work is done, and one warning line says the functions' logs were dropped
    assert result.returncode == 0, result.stdout + result.stderr
    assert "archived now" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if not PROGRESS.match(line)]
    assert warnings == [
        "invoice-archiver: warning: cannot write .local/backfill.log: a part of its path is not a folder; "
        "the functions' logs are dropped"
    ]
    assert "Function logs: not kept" in result.stdout


def test_a_read_only_working_folder_is_not_fatal_and_gets_no_log(local: Local) -> None:
    # Given a working folder where nothing may be created, whoever asks (root included): /sys
    folder = Path("/sys")
    assert not (folder / ".local").exists()

    # When October is backfilled there
    result = run_cli(["backfill", "--from", "2026-10", "--to", "2026-10"], local.env, folder)

    # Then the work is done, the log is dropped with one warning, and nothing was created there
    assert result.returncode == 0, result.stdout + result.stderr
    assert "archived now" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if not PROGRESS.match(line)]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("invoice-archiver: warning: cannot write .local/backfill.log: ")
    assert warnings[0].endswith("; the functions' logs are dropped")
    assert not (folder / ".local").exists()
