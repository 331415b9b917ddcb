"""Sources (SOURCE_ROLE_ARNS, DISCOVER_INVOICE_UNITS) in status, report, verify and backfill, through the
console script on the sandbox. The ledger and archive are written by a real backfill (accounts read with
the base credentials); the commands are then configured as an archive whose accounts are sources."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from invoice_archiver.dal.ledger import source_records
from invoice_archiver.infra.constants import OutputKey
from invoice_archiver.models.source import Source
from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.identity import Identity, InvoiceUnit
from tests.cli.conftest import BUCKET, TABLE, Local, _stack_template

PAYER, OTHER_PAYER, RECEIVER = "123456789012", "210987654321", "345678901234"
ROLE = f"arn:aws:iam::{PAYER}:role/invoice-archiver-reader"
OTHER_ROLE = f"arn:aws:iam::{OTHER_PAYER}:role/invoice-archiver-reader"
SOURCES = f"{ROLE},{OTHER_ROLE},{RECEIVER}={ROLE}"  # the receiver is read through its payer's role
AS_SOURCES = {"ACCOUNT_IDS": "", "SOURCE_ROLE_ARNS": SOURCES}
DATASET = generate(
    seed=21,
    accounts=(PAYER, OTHER_PAYER, RECEIVER),
    periods=((2026, 9),),
    invoices_per_account_period=2,
    document_size=1024,
    supplemental=(0, 1),
)


@pytest.fixture
def archived(make_local: Callable[..., Local]) -> Local:
    """September of three accounts, archived by a backfill (ACCOUNT_IDS, the base credentials)."""
    local = make_local(DATASET)
    result = local.cli("backfill", "--from", "2026-09", "--to", "2026-09")
    assert result.returncode == 0, result.stdout + result.stderr
    return local


def rows(stdout: str) -> dict[str, list[int]]:
    """status's table: account -> archived, failed, in flight, stuck, in DLQ."""
    return {
        line.split()[0]: [int(v) for v in line.split()[2:7]]
        for line in stdout.splitlines()
        if line[:12].isdigit()
    }


def record_failure(local: Local, source: Source, reason: str) -> None:
    """What the lister records when a source's role cannot be assumed (dal/source_records.py)."""
    client = local.client("dynamodb")
    source_records.record_failure(
        client, TABLE, source, reason=reason, stage="listing", now=datetime.now(UTC)
    )


def test_status_counts_sources_as_accounts_and_shows_a_failed_source_with_its_role_and_reason(
    archived: Local,
) -> None:
    # Given an archive configured with sources only (no ACCOUNT_IDS)
    clean = archived.cli("status", **AS_SOURCES)

    # Then every source's invoices are shown, and all is well (exit 0)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert rows(clean.stdout) == {account: [2, 0, 0, 0, 0] for account in (PAYER, OTHER_PAYER, RECEIVER)}
    assert "SOURCE FAILED" not in clean.stdout

    # When the lister has recorded one source FAILED (its role could not be assumed)
    record_failure(archived, Source(OTHER_PAYER, OTHER_ROLE), "cannot assume role: AccessDenied")
    failed = archived.cli("status", **AS_SOURCES)

    # Then status names it with its role and reason and exits 1; its record is not counted as an invoice
    assert failed.returncode == 1, failed.stdout + failed.stderr
    [line] = [x for x in failed.stdout.splitlines() if x.startswith("! SOURCE FAILED")]
    assert line.startswith(f"! SOURCE FAILED {OTHER_PAYER} through {OTHER_ROLE} (listing since ")
    assert line.endswith(": cannot assume role: AccessDenied")
    assert "1 source could not be read" in failed.stdout
    assert rows(failed.stdout) == rows(clean.stdout)
    # And the ledger's invoices of that account are still all there, for status without --period too
    assert not any(x.startswith("! FAILED") for x in failed.stdout.splitlines())


def test_status_and_verify_find_discovered_receivers_in_the_ledger(archived: Local) -> None:
    # Given an archive that names only the payers and discovers the receiver, whose objects are all gone
    # (every version), so only the ledger still knows the receiver
    discovering = {"ACCOUNT_IDS": "", "SOURCE_ROLE_ARNS": f"{ROLE},{OTHER_ROLE}"}
    s3 = archived.client("s3")
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=f"invoices/account={RECEIVER}/")["Versions"]
    for version in versions:
        s3.delete_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])

    # When status and verify run without discovery, then with DISCOVER_INVOICE_UNITS=true
    status_blind = archived.cli("status", **discovering)
    verify_blind = archived.cli("verify", "--json", **discovering)
    status = archived.cli("status", **discovering, DISCOVER_INVOICE_UNITS="true")
    verify = archived.cli("verify", "--json", **discovering, DISCOVER_INVOICE_UNITS="true")

    # Then without discovery the receiver is unknown to both; with it, status shows its invoices and
    # verify names each of its missing objects, summary.json included (exit 1)
    assert RECEIVER not in rows(status_blind.stdout)
    assert json.loads(verify_blind.stdout)["clean"] is True
    assert status.returncode == 0, status.stdout + status.stderr
    assert rows(status.stdout)[RECEIVER] == [2, 0, 0, 0, 0]
    assert verify.returncode == 1, verify.stdout + verify.stderr
    problems = json.loads(verify.stdout)["problems"]
    assert {p["key"] for p in problems} == {v["Key"] for v in versions}
    assert {p["kind"] for p in problems} == {"missing", "no-summary"}


def test_report_lists_every_source_account(make_local: Callable[..., Local]) -> None:
    # Given an archive of the payers only (the receiver, a source too, has nothing archived yet)
    local = make_local(DATASET)
    result = local.cli(
        "backfill", "--from", "2026-09", "--to", "2026-09", "--accounts", f"{PAYER},{OTHER_PAYER}"
    )
    assert result.returncode == 0, result.stdout + result.stderr

    # When the report of September is written with sources configured
    report = local.cli("report", "--period", "2026-09", "--format", "json", **AS_SOURCES)

    # Then it holds the payers' invoices, and names all three source accounts
    assert report.returncode == 0, report.stderr
    invoices = json.loads(report.stdout)["invoices"]
    assert sorted({i["account_id"] for i in invoices}) == [PAYER, OTHER_PAYER]
    assert len(invoices) == 4
    assert f"(accounts {PAYER}, {OTHER_PAYER}, {RECEIVER})" in report.stderr


def test_status_on_a_stack_reads_the_sources_of_its_functions(archived: Local) -> None:
    # Given a stack over the same bucket and ledger whose lister is configured with sources only
    template: dict[str, Any] = _stack_template()
    template["Resources"]["Lister"]["Properties"]["Environment"]["Variables"] = {"SOURCE_ROLE_ARNS": SOURCES}
    for name in ("Archive", "Ledger"):
        del template["Resources"][name]
    template["Outputs"][OutputKey.ARCHIVE_BUCKET] = {"Value": BUCKET}
    template["Outputs"][OutputKey.LEDGER_TABLE] = {"Value": TABLE}
    archived.client("cloudformation").create_stack(StackName="Payers", TemplateBody=json.dumps(template))
    record_failure(archived, Source(RECEIVER, ROLE), "AccessDeniedException: not a receiver of this payer")

    # When the status of the stack is asked for, with no accounts in the shell
    result = archived.cli("status", "--stack", "Payers", ACCOUNT_IDS="")

    # Then the stack's sources are its accounts, and the failed one is shown (exit 1)
    assert result.returncode == 1, result.stdout + result.stderr
    assert set(rows(result.stdout)) == {PAYER, OTHER_PAYER, RECEIVER}
    assert f"! SOURCE FAILED {RECEIVER} through {ROLE}" in result.stdout


@pytest.mark.parametrize("discover", [False, True], ids=["receiver-configured", "receiver-discovered"])
def test_backfill_lists_and_fetches_each_source_through_its_role(
    make_local: Callable[..., Local], discover: bool
) -> None:
    # Given an archive account whose own credentials read no invoice, and payers read through roles
    identity = Identity.payers([InvoiceUnit(PAYER, "unit-1", "EMEA", RECEIVER)])
    local = make_local(DATASET, identity=identity)
    sources = f"{ROLE},{OTHER_ROLE}" if discover else SOURCES
    env = {**AS_SOURCES, "SOURCE_ROLE_ARNS": sources, "DISCOVER_INVOICE_UNITS": str(discover).lower()}

    # When a backfill runs
    result = local.cli("backfill", "--from", "2026-09", "--to", "2026-09", **env)

    # Then every invoice of the three accounts is listed and archived, and no call was denied
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Listed {len(DATASET.invoices)} invoices" in result.stdout
    summaries = [k for k in local.object_keys() if k.endswith("/summary.json")]
    assert len(summaries) == len(DATASET.invoices)
    assert {f"account={i.account_id}" for i in DATASET.invoices} == {k.split("/")[1] for k in summaries}
    assert local.box.emulator is not None
    assert local.box.emulator.stats.denied == 0


def test_an_account_in_both_account_ids_and_sources_is_a_usage_error(local: Local) -> None:
    result = local.cli("status", ACCOUNT_IDS=PAYER, SOURCE_ROLE_ARNS=ROLE)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "also in ACCOUNT_IDS" in line


def test_backfill_with_a_role_that_cannot_be_assumed_archives_the_rest_and_exits_1(
    make_local: Callable[..., Local],
) -> None:
    # Given three sources, one through a role STS refuses
    local = make_local(DATASET, identity=Identity.payers(), refused_roles={OTHER_ROLE: "not trusted"})
    env = {**AS_SOURCES, "SOURCE_ROLE_ARNS": f"{ROLE},{OTHER_ROLE}", "ACCOUNT_IDS": ""}

    # When a backfill runs
    result = local.cli("backfill", "--from", "2026-09", "--to", "2026-09", **env)

    # Then it names the source and why, archives the readable payer, and exits 1
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"! Source {OTHER_PAYER} cannot be read, skipped: cannot assume {OTHER_ROLE}" in result.stdout
    assert "not trusted" in result.stdout
    archived = {k.split("/")[1] for k in local.object_keys() if k.endswith("/summary.json")}
    assert archived == {f"account={PAYER}"}
