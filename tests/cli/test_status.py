"""`invoice-archiver status` through the console script: archived, failed, in flight, stuck, in the DLQ."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from invoice_archiver.cli.target import LOCAL_DEFAULTS, LOCAL_QUEUE_NAME
from invoice_archiver.config import load_settings
from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import invoices
from invoice_archiver.dal.ledger.records import LedgerKey
from invoice_archiver.handlers import environment, fetcher
from invoice_archiver.infra.constants import OutputKey
from invoice_archiver.local import resources
from invoice_archiver.local.pipeline import PassReport, run_pass
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.faults import Faults
from tests.cli.conftest import STACK_ACCOUNT, TABLE, Deployed, Local, run_cli

ONE_INVOICE = generate(
    seed=5,
    accounts=("123456789012",),
    periods=((2026, 10),),
    invoices_per_account_period=1,
    supplemental=(0, 0),
)


@pytest.fixture
def pipeline_here(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Local], PassReport]]:
    """Run one pass of the real pipeline in this process, with failed records redelivered at once
    (the local event source's 2-4-8-16 s backoff set to 0), so a poisoned invoice reaches the DLQ fast."""

    def run(local: Local) -> PassReport:
        for name, value in {
            **LOCAL_DEFAULTS,
            "ACCOUNT_IDS": "123456789012",
            "DOWNLOAD_ATTEMPTS": "1",
        }.items():
            monkeypatch.setenv(name, value)
        clients.reset()
        resources.ensure_bucket(LOCAL_DEFAULTS["ARCHIVE_BUCKET"])
        resources.ensure_table(TABLE)
        queue_url, dlq_url = resources.ensure_queues(LOCAL_QUEUE_NAME)
        monkeypatch.setenv("INVOICE_QUEUE_URL", queue_url)
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
        return run_pass({"billing_periods": ["2026-10"]}, load_settings(), workers=1, retry_delay=0)

    yield run
    environment.reset()
    fetcher.context.cache_clear()
    clients.reset()


def test_status_shows_an_invoice_in_the_dlq_as_such_and_exits_1(
    make_local: Callable[..., Local], pipeline_here: Callable[[Local], PassReport]
) -> None:
    # Given an invoice whose every download is cut short, redelivered until SQS moved it to the DLQ
    local = make_local(ONE_INVOICE, faults=Faults(truncate_rate=1.0))
    [invoice] = ONE_INVOICE.invoices
    report = pipeline_here(local)
    assert report.unresolved == 1

    # When a person asks for the status
    result = local.cli("status")

    # Then the invoice is shown in the DLQ (not "in flight"), with its last error, and the exit code is 1
    assert result.returncode == 1, result.stdout + result.stderr
    [row] = [line for line in result.stdout.splitlines() if line.startswith("123456789012")]
    archived, failed, in_flight, stuck, in_dlq = (int(v) for v in row.split()[2:7])
    assert (archived, failed, in_flight, stuck, in_dlq) == (0, 0, 0, 0, 1)
    assert "dead-letter 1 waiting, 0 in flight" in result.stdout
    [line] = [x for x in result.stdout.splitlines() if x.startswith("! IN_DLQ")]
    assert f"123456789012 2026-10 {invoice.invoice_id}: its message is in the DLQ" in line
    assert "truncated" in line or "DocumentsIncomplete" in line
    # ... and reading the DLQ left its message there for a redrive
    again = local.cli("status")
    assert "dead-letter 1 waiting, 0 in flight" in again.stdout


def test_status_calls_an_untouched_unfinished_invoice_stuck(local: Local) -> None:
    # Given an invoice a fetcher claimed and never finished (a lease, no archive)
    assert local.cli("backfill", "--from", "2026-09", "--to", "2026-09").returncode == 0
    claimed = invoices.claim(
        clients.dynamodb(),
        TABLE,
        LedgerKey("123456789012", BillingPeriod(2026, 10), "E-STALLED"),
        owner="a-fetcher-that-died",
        now=datetime.now(UTC),
        lease_seconds=900,
        attributes={},
    )
    assert claimed.claimed

    # When the status is read now, and again with a zero "stuck after"
    fresh = local.cli("status")
    late = local.cli("status", "--stuck-after", "0")

    # Then it is in flight at first (exit 0), and stuck once it has been untouched for too long (exit 1)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "1 invoice in flight" in fresh.stdout
    assert late.returncode == 1
    assert any(line.startswith("! STUCK") and "E-STALLED" in line for line in late.stdout.splitlines())


def test_status_finds_the_ledger_and_dlq_of_a_stack(local: Local, stack: dict[str, str]) -> None:
    # Given a stack, and a malformed message its fetcher quarantined in the DLQ
    local.client("sqs").send_message(
        QueueUrl=stack[OutputKey.DEAD_LETTER_QUEUE],
        MessageBody="{not json",
        MessageAttributes={"ErrorReason": {"DataType": "String", "StringValue": "body: Invalid JSON"}},
    )

    # When the status of the stack is asked for, with no other configuration
    result = local.cli("status", "--stack", "Archiver")

    # Then it reads that stack's ledger and DLQ, shows the message with its reason, and exits 1
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Ledger {stack[OutputKey.LEDGER_TABLE]} (stack Archiver" in result.stdout
    assert "dead-letter 1 waiting, 0 in flight" in result.stdout
    assert any("MALFORMED" in line and "body: Invalid JSON" in line for line in result.stdout.splitlines())


def test_status_says_which_accounts_it_read_and_why_and_shows_every_queue(local: Local) -> None:
    # Given an archived September on a sandbox whose lines were exported (ACCOUNT_IDS among them)
    assert local.cli("backfill", "--from", "2026-09", "--to", "2026-09").returncode == 0

    # When the status is read, for all accounts and for one
    every = local.cli("status")
    one = local.cli("status", "--account", "123456789012")

    # Then each says which accounts and why, and the depth of the invoice, listing and dead-letter queues
    assert every.returncode == 0, every.stdout + every.stderr
    accounts = ", ".join(local.dataset.accounts)
    assert f"Accounts {accounts} (ACCOUNT_IDS in the environment)" in every.stdout
    assert (
        "Queues: invoice 0 waiting, 0 in flight; listing 0 waiting, 0 in flight; "
        "dead-letter 0 waiting, 0 in flight"
    ) in every.stdout
    assert "Accounts 123456789012 (--account)" in one.stdout


def test_status_exits_1_while_messages_wait_and_nothing_works_on_them(local: Local) -> None:
    # Given an archived September, and three messages an interrupted run left in the invoice queue
    assert local.cli("backfill", "--from", "2026-09", "--to", "2026-09").returncode == 0
    sqs = local.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=LOCAL_QUEUE_NAME)["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f"left over {n}")

    # When the status is read
    result = local.cli("status")

    # Then the archived invoices are there, and so is what waits with nothing working on it: exit 1
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Queues: invoice 3 waiting, 0 in flight;" in result.stdout
    assert (
        "! 3 messages wait in the invoice queue and nothing is working on it: on a sandbox, "
        "`invoice-archiver run-local` (or a backfill) drains it"
    ) in result.stdout


def test_status_on_a_stack_reads_its_lister_configuration_or_says_it_could_not(deployed: Deployed) -> None:
    # Given a stack whose lister is configured for one account
    # When the status is read by an operator who may read the functions' configuration
    allowed = deployed.cli("status", "--stack", "Archiver")

    # Then its accounts are the stack's, and its queues are the stack's
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert f"Accounts {STACK_ACCOUNT} (ACCOUNT_IDS in the stack Archiver's functions)" in allowed.stdout
    assert "Queues: invoice 0 waiting, 0 in flight; listing 0 waiting" in allowed.stdout

    # When an operator without lambda:GetFunctionConfiguration (and no ACCOUNT_IDS of their own) asks
    deployed.proxy.deny.add(("lambda", "GetFunctionConfiguration"))
    denied = deployed.cli("status", "--stack", "Archiver", ACCOUNT_IDS="")

    # Then it says it fell back to the caller's own account, and why
    assert denied.returncode == 0, denied.stdout + denied.stderr
    line = next(line for line in denied.stdout.splitlines() if line.startswith("Accounts "))
    assert line.startswith(
        "Accounts 123456789012 (your own account: no ACCOUNT_IDS or SOURCE_ROLE_ARNS in your "
    )
    assert (
        "the stack's lister configuration could not be read (lambda:GetFunctionConfiguration: "
        "AccessDeniedException: User: arn:aws:iam::123456789012:user/operator is not authorized"
    ) in line


def test_status_honours_aws_region_as_well_as_aws_default_region(local: Local) -> None:
    # Given a shell that sets AWS_REGION only (as the AWS CLI v2 and other SDKs read it)
    env = {k: v for k, v in local.env.items() if k != "AWS_DEFAULT_REGION"}
    env["AWS_REGION"] = "us-east-1"
    assert local.cli("backfill", "--from", "2026-09", "--to", "2026-09").returncode == 0

    # When the status is read
    result = run_cli(["status"], env, local.cwd)

    # Then the command used that region (the sandbox's resources live in us-east-1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "123456789012  2026-09" in result.stdout
