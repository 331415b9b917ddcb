"""Several payers in one archive (issue 11), end to end on the sandbox: the real lister and fetcher, each
source read through its own role, with base credentials that can read no payer's invoices.

The emulator enforces identity: the base credentials are an archive account that pays nothing; a payer
role (assumed through moto's STS) reads its own account, and a management account also reads the
receiver of its invoice unit.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import source_records
from invoice_archiver.sandbox.identity import Identity, InvoiceUnit
from tests.integration.conftest import Pipeline, assert_archived

PAYER, OTHER_PAYER, RECEIVER = "123456789012", "210987654321", "345678901234"  # SMALL_DATASET's accounts
UNIT = InvoiceUnit(PAYER, "unit-emea", "EMEA", RECEIVER)
ROLE = Identity.payers().role_arn(PAYER)
OTHER_ROLE = Identity.payers().role_arn(OTHER_PAYER)
EXTERNAL_ID = "archive-7f3a"


def payers_env(sources: str, **extra: str) -> dict[str, str]:
    # ACCOUNT_IDS empty: nothing is read with the base credentials (they could read nothing anyway)
    return {"ACCOUNT_IDS": "", "SOURCE_ROLE_ARNS": sources, "SOURCE_EXTERNAL_ID": EXTERNAL_ID, **extra}


def metric_values(output: str, name: str) -> list[float]:
    records = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    return [value for record in records if name in record for value in _values(record[name])]


def _values(value: object) -> list[float]:
    return [float(v) for v in value] if isinstance(value, list) else [float(str(value))]


@pytest.mark.parametrize("discover", [False, True], ids=["receiver-configured", "receiver-discovered"])
def test_two_payers_and_a_receiver_are_archived_through_their_roles_without_a_denied_call(
    make_pipeline: Callable[..., Pipeline], discover: bool
) -> None:
    # Given two payers read through their roles, and the receiver of the first payer's invoice unit:
    # named explicitly (read through its payer's role), or found by ListInvoiceUnits
    sources = f"{ROLE},{OTHER_ROLE}" if discover else f"{ROLE},{OTHER_ROLE},{RECEIVER}={ROLE}"
    env = payers_env(sources, DISCOVER_INVOICE_UNITS="true" if discover else "false")
    pipeline = make_pipeline(identity=Identity.payers([UNIT]), env=env)

    # When the pipeline runs: the real lister, then the fetchers draining the queue
    report = pipeline.run()

    # Then every invoice of all three accounts is archived, complete, and nothing failed
    assert report.clean, report.failures
    assert sorted(report.accounts) == sorted([PAYER, OTHER_PAYER, RECEIVER])
    assert_archived(pipeline, list(pipeline.dataset.invoices))
    # And the emulator never denied a call: each source was read with credentials that may read it
    assert pipeline.sandbox.emulator is not None
    assert pipeline.sandbox.emulator.stats.denied == 0
    # (discovery: the lister asks once per role; the fetcher once, for the receiver read through ROLE,
    # to check that the receiver its messages name is one of ROLE's invoice units)
    assert pipeline.sandbox.emulator.stats.calls["ListInvoiceUnits"] == (3 if discover else 0)
    # And no source is recorded as failed
    table = pipeline.settings.ledger_table
    assert source_records.failed_sources(clients.dynamodb(), table, [PAYER, OTHER_PAYER, RECEIVER]) == []


def test_a_role_that_cannot_be_assumed_fails_its_source_alone_with_its_reason(
    make_pipeline: Callable[..., Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three sources, one of them through a role that STS refuses to let the archive assume
    pipeline = make_pipeline(
        identity=Identity.payers([UNIT]),
        refused_roles={OTHER_ROLE: "the role's trust policy does not trust the archive account"},
        env=payers_env(f"{ROLE},{OTHER_ROLE},{RECEIVER}={ROLE}"),
    )

    # When the pipeline runs
    report = pipeline.run()

    # Then the other payer and the receiver are archived completely
    readable = [i for i in pipeline.dataset.invoices if i.account_id != OTHER_PAYER]
    assert_archived(pipeline, readable)
    ledger = pipeline.ledger()
    assert sorted(ledger) == sorted(i.invoice_id for i in readable)  # nothing of the broken payer
    assert report.failed == 0

    # And the broken source is recorded with its role and the reason STS gave
    [record] = source_records.failed_sources(
        clients.dynamodb(), pipeline.settings.ledger_table, [PAYER, OTHER_PAYER, RECEIVER]
    )
    assert (record.account_id, record.role_arn, record.stage) == (OTHER_PAYER, OTHER_ROLE, "listing")
    assert "AccessDenied" in record.reason
    assert "does not trust the archive account" in record.reason
    # And counted in SourcesFailed (alarmed), and nothing was denied by the Invoicing API itself
    assert metric_values(capsys.readouterr().out, "SourcesFailed") == [1.0]
    assert pipeline.sandbox.emulator is not None
    assert pipeline.sandbox.emulator.stats.denied == 0

    # When the role is fixed and the schedule runs again
    pipeline.sandbox.allow_assume_role(OTHER_ROLE)
    pipeline.run()

    # Then the payer's invoices are archived too, and its failure record is gone
    assert_archived(pipeline, list(pipeline.dataset.invoices))
    assert (
        source_records.failed_sources(clients.dynamodb(), pipeline.settings.ledger_table, [OTHER_PAYER]) == []
    )
    assert metric_values(capsys.readouterr().out, "SourcesFailed") == [0.0]
