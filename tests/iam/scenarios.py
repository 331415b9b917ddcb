"""Drive the real handlers on the sandbox, configured exactly as a synthesized template configures them,
through every path that sends an AWS request, and record each request (tests/iam/recorder.py).

Each function's environment is its template's `Environment.Variables`, with every reference resolved the
way `Deployed` names the stack's resources; the sandbox's bucket, table and queues carry those very
names. Local deviations, each because nothing here plays the part: the sandbox's endpoints and test
credentials, pre-signed URLs on http://127.0.0.1 (ALLOW_LOOPBACK_DOCUMENT_URLS), no X-Ray daemon
(POWERTOOLS_TRACE_DISABLED), a 5 MiB multipart threshold (so a 6 MiB document goes up in parts without a
larger download), and the spool directory in the test's temporary folder.

The steps, in order, each labelled in the records:

1. `source unreadable`: the schedule fires while one source cannot be read (a payer role STS refuses,
   or own credentials the Invoicing API denies): the lister records it FAILED; the fetchers drain.
2. `scheduled run`: the schedule fires again, the source reads again (its failure is cleared); the
   fetchers drain the queue, a 6 MiB document in parts.
3. `malformed message`: the fetcher quarantines a message that can never parse to the DLQ.
4. `malformed continuation`: the lister quarantines a listing continuation that can never parse.
5. `continued listing`: the lister runs out of time, continues through the listing queue, and the
   listing queue's event source hands the continuation back to it.
6. `redelivered`: the ledger forgets some archived invoices and their messages arrive again: every
   create-only write meets an existing key (HeadObject, the existing summary read back, a multipart
   upload aborted); and a message of an invoice still ARCHIVED arrives twice (skipped at the claim).
7. `operator requests`: a re-archive and a re-check of an archived invoice (as `invoice-archiver
   backfill --rearchive/--recheck` asks the lister for them), and a message naming a source nobody
   configured (refused unread, to the DLQ).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY
from invoice_archiver.dal import clients
from invoice_archiver.handlers import environment, fetcher, lister
from invoice_archiver.local.event_source import to_record
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.local.pipeline import scheduled_event
from invoice_archiver.sandbox.dataset import Dataset, generate
from invoice_archiver.sandbox.identity import ARCHIVE_ACCOUNT, BASE_ACCESS_KEY, Caller, Identity, InvoiceUnit
from invoice_archiver.sandbox.runner import Sandbox
from tests.iam.deployment import HANDLERS
from tests.iam.recorder import Recorder
from tests.iam.template import Deployed

SCHEDULED_AT = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)  # lists 2026-07 .. 2026-09
PERIODS = ((2026, 8), (2026, 9))
BIG = 6 * 1024 * 1024
LOCAL_ENV = {
    "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
FETCHER_LOCAL_ENV = {"MULTIPART_THRESHOLD_BYTES": str(5 * 1024 * 1024)}

PAYER, OTHER_PAYER, RECEIVER = "111111111111", "222222222222", "333333333333"
UNIT = InvoiceUnit(PAYER, "unit-emea", "EMEA", RECEIVER)
EXTERNAL_ID = "archive-7f3a"


@dataclass(frozen=True)
class Scenario:
    """Who the sources are: the archive account's own invoices, or payers read through their roles."""

    accounts: tuple[str, ...]
    big_invoice_account: str
    payers: bool

    def dataset(self) -> Dataset:
        base = generate(
            seed=16,
            accounts=self.accounts,
            periods=PERIODS,
            invoices_per_account_period=2,
            supplemental=(1, 2),
            document_size=2048,
        )
        big = generate(
            seed=61,
            accounts=(self.big_invoice_account,),
            periods=((2026, 9),),
            invoices_per_account_period=1,
            document_size=BIG,
            supplemental=(0, 0),
        )
        return Dataset([*base.invoices, *big.invoices])


OWN_ACCOUNT = Scenario(accounts=(ARCHIVE_ACCOUNT,), big_invoice_account=ARCHIVE_ACCOUNT, payers=False)
SEVERAL_PAYERS = Scenario(
    accounts=(PAYER, OTHER_PAYER, RECEIVER), big_invoice_account=OTHER_PAYER, payers=True
)


def payer_role(account: str) -> str:
    return Identity.payers().role_arn(account)


class SwitchableIdentity(Identity):
    """Enforced identity whose base credentials act as `account`, which a test may change between runs."""

    def __init__(self, account: str) -> None:
        super().__init__(enforce=True, accounts_by_key={BASE_ACCESS_KEY: account})
        self.account = account

    def caller(self, authorization: str | None) -> Caller:
        if f"Credential={BASE_ACCESS_KEY}/" in (authorization or ""):
            return Caller(self.account, f"arn:aws:iam::{self.account}:user/{BASE_ACCESS_KEY}")
        return super().caller(authorization)


class TickingContext(LocalContext):
    """A context whose clock moves one second each time the lister asks how much is left, so a listing
    stops after a fixed number of queries whatever this machine's speed."""

    def __init__(self, timeout_seconds: int) -> None:
        super().__init__("invoice-archiver-lister", timeout_seconds=timeout_seconds)
        self.asked = 0

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return max(0, (self.timeout_seconds - self.asked) * 1000)


@dataclass
class Harness:
    deployed: Deployed
    sandbox: Sandbox
    recorder: Recorder
    monkeypatch: pytest.MonkeyPatch
    spool: Path
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> sandbox URL
    records: list[dict[str, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # every invoice message body the lister sent
    current: str = ""  # the function whose clients are cached

    # Set-up ---------------------------------------------------------------------------------------

    def create_resources(self) -> None:
        """The stack's bucket, table and queues in the sandbox, under the names `deployed` gives them."""
        from invoice_archiver.local import resources

        for logical_id, resource in self.deployed.resources.items():
            if resource["Type"] == "AWS::S3::Bucket":
                resources.ensure_bucket(self.deployed.name(logical_id))
            elif resource["Type"] == "AWS::DynamoDB::Table":
                resources.ensure_table(self.deployed.name(logical_id))
            elif resource["Type"] == "AWS::SQS::Queue":
                name = self.deployed.name(logical_id)
                self.queues[logical_id] = clients.sqs().create_queue(QueueName=name)["QueueUrl"]

    def environment(self, function: str) -> dict[str, str]:
        """The function's environment as the template sets it, its references resolved to the sandbox's."""
        _, resource = self.deployed.function(HANDLERS[function])
        variables = self.deployed.resolve(
            resource["Properties"]["Environment"]["Variables"], refs=self.queues
        )
        local = {
            **LOCAL_ENV,
            **(FETCHER_LOCAL_ENV if function == "fetcher" else {}),
            "SPOOL_DIRECTORY": str(self.spool),
        }
        return {**{k: str(v) for k, v in variables.items()}, **local}

    @contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        """The function's environment in place while it runs (its settings are read once, at first use).
        Each function runs in its own process in Lambda: switching forgets the other's clients and its
        assumed-role sessions, so each function assumes its roles itself."""
        if function != self.current:
            clients.reset()
            fetcher.context.cache_clear()
            self.current = function
        for name, value in self.environment(function).items():
            self.monkeypatch.setenv(name, value)
        self.recorder.expecting = function
        try:
            yield
        finally:
            self.recorder.expecting = None
        lost = self.recorder.unattributed
        assert not lost, f"requests sent while the {function} ran, from no handler's stack: {lost}"

    def step(self, name: str) -> None:
        """Label what was recorded since the last step."""
        for record in self.recorder.take():
            record["step"] = name
            self.records.append(record)

    # The functions ----------------------------------------------------------------------------------

    def list(self, event: dict[str, Any], context: LocalContext | None = None) -> dict[str, Any]:
        with self.acting_as("lister"):
            response: dict[str, Any] = lister.handler(
                event, context or LocalContext("invoice-archiver-lister", 600)
            )
        return response

    def fetch(self, bodies: list[str]) -> dict[str, Any]:
        records = [_record(body, f"m-{n}") for n, body in enumerate(bodies)]
        with self.acting_as("fetcher"):
            response: dict[str, Any] = fetcher.handler(
                {"Records": records}, LocalContext("invoice-archiver-fetcher")
            )
        return response

    def drain(self) -> None:
        """Hand every invoice message to the fetcher in batches of ten, as the event source mapping does."""
        while bodies := _receive(self.queue("PipelineInvoiceQueue")):
            self.messages += bodies
            response = self.fetch(bodies)
            assert response == {"batchItemFailures": []}, response

    def queue(self, prefix: str) -> str:
        [url] = [url for lid, url in self.queues.items() if lid.startswith(prefix)]
        return url


def _record(body: str, message_id: str) -> dict[str, Any]:
    return to_record(
        {"MessageId": message_id, "ReceiptHandle": f"r-{message_id}", "Body": body},
        "arn:aws:sqs:us-east-1:123456789012:q",
        "us-east-1",
    )


def _receive(queue_url: str) -> list[str]:
    """Up to ten messages, received and deleted (test-side: not recorded)."""
    sqs = clients.sqs()
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    if messages:
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )
    return [m["Body"] for m in messages]


def _reset() -> None:
    environment.reset()
    clients.reset()
    fetcher.context.cache_clear()


def record(deployed: Deployed, scenario: Scenario, spool: Path) -> list[dict[str, Any]]:
    """Run every step on a fresh sandbox; return the functions' recorded requests."""
    identity: Identity = Identity.payers([UNIT]) if scenario.payers else SwitchableIdentity(ARCHIVE_ACCOUNT)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")] + [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
        ]:
            monkeypatch.delenv(name, raising=False)
        for name, value in {
            "AWS_ACCESS_KEY_ID": BASE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_CONFIG_FILE": "/dev/null",
        }.items():
            monkeypatch.setenv(name, value)
        sandbox = Sandbox(scenario.dataset(), use_existing_endpoints=False, identity=identity).start()
        recorder = Recorder().install()
        try:
            _reset()
            harness = Harness(deployed, sandbox, recorder, monkeypatch, spool)
            harness.create_resources()
            recorder.take()
            _steps(harness, scenario, identity)
            return harness.records
        finally:
            recorder.uninstall()
            sandbox.stop()
            _reset()


def _steps(harness: Harness, scenario: Scenario, identity: Identity) -> None:
    unreadable, restore = _break_a_source(harness.sandbox, scenario, identity)
    harness.list(scheduled_event(SCHEDULED_AT))
    harness.drain()
    harness.step("source unreadable")

    restore()
    harness.list(scheduled_event(SCHEDULED_AT))
    harness.drain()
    harness.step("scheduled run")
    assert unreadable, "the failing source was never read"

    assert harness.fetch(["this is not an invoice message"]) == {"batchItemFailures": []}
    harness.step("malformed message")

    harness.list({"Records": [_record('{"not": "a continuation"}', "c-1")]})
    harness.step("malformed continuation")

    first = harness.list(scheduled_event(SCHEDULED_AT), TickingContext(timeout_seconds=61))
    assert first.get("continued"), first
    while continuations := _receive(harness.queue("PipelineListingQueue")):
        harness.list({"Records": [_record(body, "c-2") for body in continuations[:1]]})
    harness.drain()
    harness.step("continued listing")

    forgotten, kept = _forget_some(harness)
    assert harness.fetch([*forgotten, kept]) == {"batchItemFailures": []}
    harness.step("redelivered")

    listed = json.loads(kept)
    now = datetime.now(UTC).isoformat()
    requests = [{**listed, "reason": reason, "listed_at": now} for reason in ("rearchive", "recheck")]
    forged = {**listed, "account_id": "999988887777", "listed_at": now}  # a source nobody configured
    assert harness.fetch([json.dumps(r) for r in [*requests, forged]]) == {"batchItemFailures": []}
    harness.step("operator requests")


def _break_a_source(
    sandbox: Sandbox, scenario: Scenario, identity: Identity
) -> tuple[list[str], Callable[[], None]]:
    """Make one source unreadable; return a list that is non-empty once it was refused, and the undo."""
    refused: list[str] = []
    if scenario.payers:
        role = payer_role(OTHER_PAYER)
        sandbox.refuse_assume_role(role, "the role's trust policy does not trust the archive account")
        refused.append(role)
        return refused, lambda: sandbox.allow_assume_role(role)
    assert isinstance(identity, SwitchableIdentity)
    identity.account = "000000000000"  # the base credentials now belong to an account that pays nothing
    refused.append(ARCHIVE_ACCOUNT)

    def restore() -> None:
        identity.account = ARCHIVE_ACCOUNT

    return refused, restore


def _forget_some(harness: Harness) -> tuple[list[str], str]:
    """Delete the ledger items of the big invoice and one other (test-side): their messages, to resend;
    and the message of an invoice the ledger still knows as archived (a duplicate delivery)."""
    table = harness.deployed.name(
        next(lid for lid, r in harness.deployed.resources.items() if r["Type"] == "AWS::DynamoDB::Table")
    )
    dynamodb = clients.dynamodb()
    items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    archived = {item["invoice_id"]["S"]: item for item in items if "invoice_id" in item}
    big = [inv.invoice_id for inv in harness.sandbox.dataset.invoices if inv.document.size >= BIG]
    chosen = [*big, next(i for i in archived if i not in big)]
    bodies = {json.loads(body)["invoice_id"]: body for body in harness.messages}
    for invoice_id in chosen:
        item = archived[invoice_id]
        key = {LEDGER_PARTITION_KEY: item[LEDGER_PARTITION_KEY], LEDGER_SORT_KEY: item[LEDGER_SORT_KEY]}
        dynamodb.delete_item(TableName=table, Key=key)
    duplicate = next(i for i in archived if i not in chosen)
    return [bodies[invoice_id] for invoice_id in chosen], bodies[duplicate]
