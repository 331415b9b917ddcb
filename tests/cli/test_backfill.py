"""`invoice-archiver backfill` through the console script: on a sandbox's endpoints (the fetcher runs in
the command) and on a stack (CloudFormation outputs; the stack's fetcher is the real handler, draining the
stack's queue beside the command as Lambda would)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from invoice_archiver.cli.event_source import EventSourceMapping
from invoice_archiver.cli.lambda_context import LocalContext
from invoice_archiver.dal import clients
from invoice_archiver.handlers import environment, fetcher
from invoice_archiver.infra.constants import OutputKey
from invoice_archiver.sandbox.documents import document_bytes
from tests.cli.conftest import BUCKET, STACK_ACCOUNT, Local, field, invoices_of


def test_backfill_over_two_periods_archives_both_and_nothing_twice(local: Local) -> None:
    # Given a sandbox with invoices for August, September and October
    wanted = invoices_of(local.dataset, (2026, 9), (2026, 10))

    # When September to October is backfilled, twice
    first = local.cli("backfill", "--from", "2026-09", "--to", "2026-10")
    second = local.cli("backfill", "--from", "2026-09", "--to", "2026-10")

    # Then the first run archives every invoice of both months and nothing of August
    assert first.returncode == 0, first.stdout + first.stderr
    assert field(first.stdout, "archived now") == len(wanted)
    assert field(first.stdout, "not settled") == 0
    ledger = local.ledger()
    assert set(ledger) == {invoice.invoice_id for invoice in wanted}
    assert {item["status"] for item in ledger.values()} == {"ARCHIVED"}
    summaries = [k for k in local.object_keys() if k.endswith("/summary.json")]
    assert len(summaries) == len(wanted)
    assert not [k for k in summaries if "period=2026-08" in k]
    # ... with progress on stderr (plain lines: this is not a terminal)
    assert "listing: 6/6 queries" in first.stderr
    assert f"archiving: {len(wanted)}/{len(wanted)} invoices" in first.stderr
    # ... and the second run archives nothing again
    assert second.returncode == 0, second.stdout + second.stderr
    assert field(second.stdout, "archived now") == 0
    assert field(second.stdout, "already archived") == len(wanted)


def test_backfill_with_recheck_re_checks_every_archived_invoice(local: Local) -> None:
    # Given an archived October
    october = invoices_of(local.dataset, (2026, 10))
    assert local.cli("backfill", "--from", "2026-10", "--to", "2026-10").returncode == 0

    # When October is backfilled again with --recheck
    result = local.cli("backfill", "--from", "2026-10", "--to", "2026-10", "--recheck")

    # Then every invoice was enqueued and re-checked by the fetcher (fresh URLs), none archived again
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"enqueued {len(october)} to " in result.stdout
    assert field(result.stdout, "re-checked") == len(october)
    assert field(result.stdout, "archived now") == 0
    assert field(result.stdout, "not settled") == 0


def test_backfill_of_one_invoice_re_archives_a_deleted_document(local: Local) -> None:
    # Given an archived October, and one supplemental document deleted behind the archiver's back
    assert local.cli("backfill", "--from", "2026-10", "--to", "2026-10").returncode == 0
    invoice = next(i for i in invoices_of(local.dataset, (2026, 10)) if i.supplemental)
    item = local.ledger()[invoice.invoice_id]
    document = next(d for d in item["documents"] if d["document_type"] != "INVOICE")
    s3 = local.client("s3")
    s3.delete_object(Bucket=BUCKET, Key=document["key"])
    assert local.cli("verify").returncode == 1

    # When that one invoice is backfilled by its id
    result = local.cli("backfill", "--invoice-id", invoice.invoice_id)

    # Then it is archived again: the deleted document is back with the very bytes the API serves,
    # the other objects were kept, and verify finds nothing wrong (a restore is not an overwrite)
    assert result.returncode == 0, result.stdout + result.stderr
    assert field(result.stdout, "archived now") == 1
    served = {d.document_id: document_bytes(d) for d in invoice.supplemental}
    restored = s3.get_object(Bucket=BUCKET, Key=document["key"])["Body"].read()
    assert restored == served[document["document_id"]]
    assert hashlib.sha256(restored).hexdigest() == document["sha256"]
    assert local.ledger()[invoice.invoice_id]["status"] == "ARCHIVED"
    check = local.cli("verify")
    assert check.returncode == 0, check.stdout + check.stderr


def test_backfill_checks_the_api_rules_before_any_call(local: Local) -> None:
    # Given receiver-role data that starts in 2025-06
    assert local.box.emulator is not None

    # When a backfill asks for roles in months before that
    result = local.cli("backfill", "--from", "2025-01", "--to", "2025-07", "--roles", "BUYER")

    # Then it stops with one line naming the rule, and the API was never called
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "ReceiverRole data starts 2025-06-01" in result.stderr
    assert local.box.emulator.stats.snapshot()["calls"] == {}


# --- against a stack ------------------------------------------------------------------------------


@pytest.fixture
def deployed_fetcher(stack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stack's fetcher: the real handler fed from the stack's queue, as Lambda's event source does."""
    for name, value in {
        "ARCHIVE_BUCKET": stack[OutputKey.ARCHIVE_BUCKET],
        "LEDGER_TABLE": stack[OutputKey.LEDGER_TABLE],
        "DEAD_LETTER_QUEUE_URL": stack[OutputKey.DEAD_LETTER_QUEUE],
        "ACCOUNT_IDS": STACK_ACCOUNT,  # as the stack configures both functions
        "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    environment.reset()
    clients.reset()
    fetcher.archiver.cache_clear()
    stop = threading.Event()

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = fetcher.handler(event, LocalContext("Archiver-Fetcher"))
        return response

    def poll() -> None:
        mapping = EventSourceMapping(clients.sqs(), stack[OutputKey.INVOICE_QUEUE], invoke, workers=2)
        while not stop.wait(0.5):
            mapping.drain()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(30)
    environment.reset()
    fetcher.archiver.cache_clear()


def test_backfill_on_a_stack_enqueues_to_its_queue_and_follows_the_ledger_until_settled(
    local: Local, stack: dict[str, str], deployed_fetcher: None
) -> None:
    # Given a stack whose fetcher consumes its queue, and its account's October
    october = [i for i in invoices_of(local.dataset, (2026, 10)) if i.account_id == STACK_ACCOUNT]

    # When the operator backfills October on the stack, for that account
    result = local.cli(
        "backfill",
        "--stack",
        "Archiver",
        "--from",
        "2026-10",
        "--to",
        "2026-10",
        "--accounts",
        STACK_ACCOUNT,
    )

    # Then the command listed with its own credentials, enqueued, and waited until every invoice was
    # archived by the stack, in the stack's bucket and ledger
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"enqueued {len(october)} to {stack[OutputKey.INVOICE_QUEUE]}" in result.stdout
    assert field(result.stdout, "archived now") == len(october)
    assert field(result.stdout, "not settled") == 0
    keys = local.client("s3").list_objects_v2(Bucket=stack[OutputKey.ARCHIVE_BUCKET])["Contents"]
    assert len([k for k in keys if k["Key"].endswith("/summary.json")]) == len(october)


def test_backfill_on_a_stack_lists_its_accounts_and_with_no_wait_only_enqueues(
    local: Local, stack: dict[str, str]
) -> None:
    # Given a stack whose lister is configured for one account (the shell's ACCOUNT_IDS names three)
    october = [i for i in invoices_of(local.dataset, (2026, 10)) if i.account_id == STACK_ACCOUNT]
    assert len(local.env["ACCOUNT_IDS"].split(",")) == 3

    # When the operator backfills October without waiting (its fetcher is not running now)
    result = local.cli("backfill", "--stack", "Archiver", "--from", "2026-10", "--to", "2026-10", "--no-wait")

    # Then one message per invoice of the stack's account waits in the stack's queue, and the command
    # says how to follow it
    assert result.returncode == 0, result.stdout + result.stderr
    attributes = local.client("sqs").get_queue_attributes(
        QueueUrl=stack[OutputKey.INVOICE_QUEUE], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == len(october)
    assert "with 1 query;" in result.stdout
    assert "invoice-archiver status --stack Archiver" in result.stdout
