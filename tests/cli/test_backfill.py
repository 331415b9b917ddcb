"""`invoice-archiver backfill` through the console script. The listing is always the lister's: on a
sandbox's endpoints the real lister and fetcher run in the command; on a stack the command invokes the
stack's lister (Lambda's Invoke, answered by the real lister handler, see conftest.Deployed) and follows
the ledger while the stack's fetcher (the real handler, beside the command) archives."""

from __future__ import annotations

import hashlib
import json

import pytest

from invoice_archiver.infra.constants import OutputKey
from invoice_archiver.sandbox.documents import document_bytes
from tests.cli.conftest import BUCKET, LISTER_TIMEOUT, STACK_ACCOUNT, Deployed, Local, field, invoices_of

SENDS = ("SendMessage", "SendMessageBatch")


def test_backfill_over_two_periods_archives_both_and_nothing_twice(local: Local) -> None:
    # Given a sandbox with invoices for August, September and October
    wanted = invoices_of(local.dataset, (2026, 9), (2026, 10))

    # When September to October is backfilled, twice
    first = local.cli("backfill", "--from", "2026-09", "--to", "2026-10")
    second = local.cli("backfill", "--from", "2026-09", "--to", "2026-10")

    # Then the first run archives every invoice of both months and nothing of August
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Listed {len(wanted)} invoices with 6 queries; enqueued {len(wanted)}" in first.stdout
    assert field(first.stdout, "archived now") == len(wanted)
    assert field(first.stdout, "not settled") == 0
    ledger = local.ledger()
    assert set(ledger) == {invoice.invoice_id for invoice in wanted}
    assert {item["status"] for item in ledger.values()} == {"ARCHIVED"}
    summaries = [k for k in local.object_keys() if k.endswith("/summary.json")]
    assert len(summaries) == len(wanted)
    assert not [k for k in summaries if "period=2026-08" in k]
    # ... with progress on stderr (plain lines: this is not a terminal), the functions' JSON logs only in
    # the log file, never on stdout
    assert "listing: 6/6 queries" in first.stderr
    assert f"archiving: {len(wanted)}/{len(wanted)} invoices" in first.stderr
    assert not [line for line in first.stdout.splitlines() if line.lstrip().startswith("{")]
    log = (local.cwd / ".local" / "backfill.log").read_text(encoding="utf-8")
    assert '"message":"listed invoices"' in log
    # ... and the second run archives nothing again, and says so without a table of zeros
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"enqueued 0 ({len(wanted)} archived and unchanged)" in second.stdout
    assert "archived now" not in second.stdout


def test_backfill_with_recheck_re_checks_every_archived_invoice(local: Local) -> None:
    # Given an archived October
    october = invoices_of(local.dataset, (2026, 10))
    assert local.cli("backfill", "--from", "2026-10", "--to", "2026-10").returncode == 0

    # When October is backfilled again with --recheck
    result = local.cli("backfill", "--from", "2026-10", "--to", "2026-10", "--recheck")

    # Then every invoice was enqueued and re-checked by the fetcher (fresh URLs), none archived again
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"enqueued {len(october)}" in result.stdout
    assert field(result.stdout, "re-checked") == len(october)
    assert field(result.stdout, "archived now") == 0
    assert field(result.stdout, "not settled") == 0


def test_backfill_of_one_invoice_re_archives_a_deleted_document_through_the_lister(local: Local) -> None:
    # Given an archived October, and one supplemental document deleted behind the archiver's back
    assert local.cli("backfill", "--from", "2026-10", "--to", "2026-10").returncode == 0
    invoice = next(i for i in invoices_of(local.dataset, (2026, 10)) if i.supplemental)
    before = local.ledger()[invoice.invoice_id]
    document = next(d for d in before["documents"] if d["document_type"] != "INVOICE")
    s3 = local.client("s3")
    s3.delete_object(Bucket=BUCKET, Key=document["key"])
    assert local.cli("verify").returncode == 1

    # When that one invoice is backfilled by its id (the lister enqueues it as a re-archive; the fetcher's
    # claim takes the ARCHIVED invoice: no ledger record is reopened by the command)
    result = local.cli("backfill", "--invoice-id", invoice.invoice_id)

    # Then it is archived again: the deleted document is back with the very bytes the API serves,
    # the other objects were kept, and verify finds nothing wrong (a restore is not an overwrite)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Listed 1 invoice with 1 query; enqueued 1" in result.stdout
    assert field(result.stdout, "archived now") == 1
    served = {d.document_id: document_bytes(d) for d in invoice.supplemental}
    restored = s3.get_object(Bucket=BUCKET, Key=document["key"])["Body"].read()
    assert restored == served[document["document_id"]]
    assert hashlib.sha256(restored).hexdigest() == document["sha256"]
    after = local.ledger()[invoice.invoice_id]
    assert after["status"] == "ARCHIVED"
    assert after["archived_at"] > before["archived_at"]
    check = local.cli("verify")
    assert check.returncode == 0, check.stdout + check.stderr


def test_backfill_checks_the_api_rules_before_any_call(local: Local) -> None:
    # Given receiver-role data that starts in 2025-06
    assert local.box.emulator is not None

    # When a backfill asks for roles in months before that
    result = local.cli("backfill", "--from", "2025-01", "--to", "2025-07", "--roles", "BUYER")

    # Then it stops with one line naming the rule, the API was never called, and as nothing was logged
    # no log file was created
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "ReceiverRole data starts 2025-06-01" in result.stderr
    assert local.box.emulator.stats.snapshot()["calls"] == {}
    assert not (local.cwd / ".local").exists()


def test_a_listing_that_continues_piece_by_piece_is_followed_to_every_invoice(local: Local) -> None:
    # Given a lister that hands its listing on after every query (its reserve is its whole timeout)
    wanted = invoices_of(local.dataset, (2026, 9), (2026, 10))

    # When September to October is backfilled
    result = local.cli("backfill", "--from", "2026-09", "--to", "2026-10", LISTING_RESERVE_SECONDS="300")

    # Then every piece's invoices were named and followed until archived
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Listed {len(wanted)} invoices with 6 queries; enqueued {len(wanted)}" in result.stdout
    assert field(result.stdout, "archived now") == len(wanted)
    assert "listing: 6/6 queries" in result.stderr
    log = (local.cwd / ".local" / "backfill.log").read_text(encoding="utf-8")
    assert log.count('"message":"listing piece done"') == 5


# --- against a stack ------------------------------------------------------------------------------


def test_backfill_on_a_stack_invokes_its_lister_and_follows_the_ledger_until_settled(
    deployed: Deployed,
) -> None:
    # Given a stack whose fetcher consumes its queue, and whose queues take messages only from the stack's
    # own roles (the operator is denied sqs:SendMessage, as the queue policies deny it)
    deployed.proxy.deny |= {("sqs", send) for send in SENDS}
    deployed.start_fetcher()
    october = [i for i in invoices_of(deployed.local.dataset, (2026, 10)) if i.account_id == STACK_ACCOUNT]

    # When the operator backfills October on the stack, for that account
    result = deployed.cli(
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

    # Then the command asked the stack's lister, once, with the request and a report of what it enqueued
    assert result.returncode == 0, result.stdout + result.stderr
    assert deployed.invocations == [
        {
            "from_period": "2026-10",
            "to_period": "2026-10",
            "accounts": [STACK_ACCOUNT],
            "report_enqueued": True,
        }
    ]
    assert deployed.proxy.sent("lambda", "Invoke") == ["Invoke"]
    # ... never sent a message itself
    assert deployed.proxy.sent("sqs", *SENDS) == []
    # ... and waited until every invoice was archived by the stack, in the stack's bucket and ledger
    assert f"Listed {len(october)} invoices with 1 query; enqueued {len(october)}" in result.stdout
    assert field(result.stdout, "archived now") == len(october)
    assert field(result.stdout, "not settled") == 0
    keys = deployed.local.client("s3").list_objects_v2(Bucket=deployed.stack[OutputKey.ARCHIVE_BUCKET])
    assert len([k for k in keys["Contents"] if k["Key"].endswith("/summary.json")]) == len(october)


def test_backfill_on_a_stack_lists_its_accounts_and_with_no_wait_only_lists(deployed: Deployed) -> None:
    # Given a stack whose lister is configured for one account (the shell's ACCOUNT_IDS names three)
    october = [i for i in invoices_of(deployed.local.dataset, (2026, 10)) if i.account_id == STACK_ACCOUNT]
    assert len(deployed.local.env["ACCOUNT_IDS"].split(",")) == 3

    # When the operator backfills October without waiting (its fetcher is not running now)
    result = deployed.cli(
        "backfill", "--stack", "Archiver", "--from", "2026-10", "--to", "2026-10", "--no-wait"
    )

    # Then the stack's lister sent one message per invoice of the stack's account to the stack's queue,
    # and the command says how to follow them
    assert result.returncode == 0, result.stdout + result.stderr
    attributes = deployed.local.client("sqs").get_queue_attributes(
        QueueUrl=deployed.stack[OutputKey.INVOICE_QUEUE], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == len(october)
    assert "with 1 query;" in result.stdout
    assert "invoice-archiver status --stack Archiver" in result.stdout


def test_a_stack_listing_that_continues_through_the_listing_queue_is_followed_in_the_ledger(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack lister that hands its listing on after every query, consuming its own listing queue,
    # and a fetcher consuming the invoice queue
    monkeypatch.setenv("LISTING_RESERVE_SECONDS", str(LISTER_TIMEOUT))
    deployed.start_listing_consumer()
    deployed.start_fetcher()
    wanted = [
        i for i in invoices_of(deployed.local.dataset, (2026, 9), (2026, 10)) if i.account_id == STACK_ACCOUNT
    ]

    # When its account's September and October are backfilled on the stack (two queries, two pieces)
    result = deployed.cli(
        "backfill", "--stack", "Archiver", "--from", "2026-09", "--to", "2026-10", "--accounts", STACK_ACCOUNT
    )

    # Then the first piece answered, the others ran from the listing queue, and the command followed the
    # ledger of the listing's accounts and periods until everything was archived and the queues were empty
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The listing continues through the stack's listing queue" in result.stdout
    assert field(result.stdout, "archived now") == len(wanted)
    assert field(result.stdout, "not settled") == 0
    ledger = deployed.local.ledger(deployed.stack[OutputKey.LEDGER_TABLE])
    assert {ledger[i.invoice_id]["status"] for i in wanted} == {"ARCHIVED"}
    assert len(ledger) == len(wanted)


def test_backfill_on_a_stack_with_a_timeout_stops_following_and_says_the_stack_goes_on(
    deployed: Deployed,
) -> None:
    # Given a stack whose fetcher is not consuming right now
    # When a backfill is followed for one second only
    result = deployed.cli(
        "backfill", "--stack", "Archiver", "--from", "2026-10", "--to", "2026-10", "--timeout", "1"
    )

    # Then it stops following, says what is not settled yet and that the stack keeps working, exit 1
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Stopped following after --timeout 1 s; the stack keeps working on what is queued" in result.stdout
    assert "invoice-archiver status --stack Archiver" in result.stdout
    assert field(result.stdout, "not settled") > 0
    assert "Traceback" not in result.stderr


def test_a_re_archive_on_a_stack_names_an_id_no_source_lists(deployed: Deployed) -> None:
    # Given a stack; When an id no source lists is re-archived
    result = deployed.cli("backfill", "--stack", "Archiver", "--invoice-id", "NOPE-1")

    # Then the lister was asked to re-archive it, and the command names the id it did not find, exit 1
    assert result.returncode == 1, result.stdout + result.stderr
    assert json.loads(json.dumps(deployed.invocations)) == [
        {"invoice_ids": ["NOPE-1"], "rearchive": True, "report_enqueued": True}
    ]
    assert "! not found: NOPE-1: no source of this archive lists it" in result.stdout


def test_backfill_on_a_stack_without_get_function_configuration_still_works_and_says_so(
    deployed: Deployed,
) -> None:
    # Given an operator who may invoke the lister but not read the functions' configuration
    deployed.proxy.deny |= {("lambda", "GetFunctionConfiguration"), *(("sqs", send) for send in SENDS)}

    # When they backfill October without waiting
    result = deployed.cli(
        "backfill", "--stack", "Archiver", "--from", "2026-10", "--to", "2026-10", "--no-wait"
    )

    # Then the lister did the work with its own configuration, and the command said what it could not read
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Listed 3 invoices with 1 query; enqueued 3" in result.stdout
    assert (
        "invoice-archiver: warning: the stack's lister configuration could not be read "
        "(lambda:GetFunctionConfiguration: AccessDeniedException"
    ) in result.stderr
