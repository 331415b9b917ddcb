"""The fetcher reads each invoice through the source its message names (issue 11), on the sandbox.

The emulator enforces identity (`Identity.payers`): the base credentials act as an archive account that
pays nothing, so only a payer's role, assumed through moto's STS, can fetch that payer's invoices.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.sts.models import sts_backends
from pydantic_core import to_jsonable_python

from invoice_archiver.dal import clients, invoicing, ledger, source_status
from invoice_archiver.dal.sources import ROLE_SESSION_NAME, SourceClients
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.source import Source
from invoice_archiver.sandbox.dataset import Invoice
from invoice_archiver.sandbox.identity import Identity
from tests.integration.conftest import Pipeline, _assert_invoice_archived

PAYER, OTHER_PAYER, RECEIVER = "123456789012", "210987654321", "345678901234"  # SMALL_DATASET's accounts
IDENTITY = Identity.payers()
ROLE = IDENTITY.role_arn(PAYER)
OTHER_ROLE = IDENTITY.role_arn(OTHER_PAYER)
NOT_CONFIGURED = IDENTITY.role_arn(RECEIVER)
EXTERNAL_ID = "archive-7f3a"


@pytest.fixture
def payers(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    """Two payers configured through their roles; RECEIVER in ACCOUNT_IDS (base credentials: denied)."""
    return make_pipeline(
        identity=Identity.payers(),
        env={
            "ACCOUNT_IDS": RECEIVER,
            "SOURCE_ROLE_ARNS": f"{ROLE},{OTHER_ROLE}",
            "SOURCE_EXTERNAL_ID": EXTERNAL_ID,
        },
    )


def first_invoice(pipeline: Pipeline, account: str) -> Invoice:
    return next(i for i in pipeline.dataset.invoices if i.account_id == account and i.supplemental)


def message_through(role_arn: str | None, invoice: Invoice, *, read_as: str | None = None) -> str:
    """The lister's message for `invoice`, naming `role_arn`: its summary listed through `read_as`
    (default: `role_arn`), which may read the invoice's account."""
    reader = SourceClients(session_name="test-lister")  # the test's own: any role, no external id
    client = reader.invoicing(
        Source(invoice.account_id, read_as or role_arn), region="us-east-1", max_attempts=3
    )
    request = {"Selector": {"ResourceType": "INVOICE_ID", "Value": invoice.invoice_id}}
    [summary] = list(invoicing.iter_summaries(client, request))
    return InvoiceMessage(
        account_id=invoice.account_id,
        invoice_id=invoice.invoice_id,
        billing_period=str(BillingPeriod(*invoice.billing_period)),
        summary=to_jsonable_python(summary),
        role_arn=role_arn,
    ).model_dump_json()


def assumed_by_archiver(account: str) -> list[Any]:
    """moto's record of every AssumeRole of a role in `account` made with the archiver's session name."""
    return [r for r in sts_backends[account]["aws"].assumed_roles if r.session_name == ROLE_SESSION_NAME]


def ledger_item(pipeline: Pipeline, invoice: Invoice) -> dict[str, Any]:
    key = ledger.LedgerKey(invoice.account_id, BillingPeriod(*invoice.billing_period), invoice.invoice_id)
    item = ledger.get(clients.dynamodb(), pipeline.settings.ledger_table, key)
    assert item is not None
    return item


def assert_archived(pipeline: Pipeline, invoices: list[Invoice]) -> None:
    """conftest's check, one ledger item at a time (Pipeline.ledger() knows only invoice items, and the
    ledger now holds a source's record too)."""
    for invoice in invoices:
        _assert_invoice_archived(pipeline, invoice, ledger_item(pipeline, invoice))


def emulator_stats(pipeline: Pipeline) -> dict[str, Any]:
    assert pipeline.sandbox.emulator is not None
    return pipeline.sandbox.emulator.stats.snapshot()


def test_an_invoice_is_fetched_with_its_payer_roles_credentials_and_archived(payers: Pipeline) -> None:
    # Given a payer's invoice that the archive's base credentials may not fetch ...
    invoice = first_invoice(payers, PAYER)
    with pytest.raises(ClientError) as denied:
        clients.invoicing("us-east-1", 1).get_invoice_pdf(InvoiceId=invoice.invoice_id)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    # ... and the lister's message for it, naming the payer's role
    body = message_through(ROLE, invoice)
    assert json.loads(body)["role_arn"] == ROLE
    before = len(assumed_by_archiver(PAYER))
    assert payers.sandbox.emulator is not None
    payers.sandbox.emulator.reset_stats()

    # When the fetcher handles it
    response = payers.fetch([body])

    # Then it is archived, byte for byte, through the role's GetInvoicePDF: the emulator denied nothing
    assert response == {"batchItemFailures": []}
    assert_archived(payers, [invoice])
    stats = emulator_stats(payers)
    assert stats["calls"].get("GetInvoicePDF", 0) >= 1
    assert stats["denied"] == 0
    # And the fetcher assumed the role once, in the archiver's session, with the external id
    [assumption] = assumed_by_archiver(PAYER)[before:]
    assert assumption.role_arn == ROLE
    assert assumption.external_id == EXTERNAL_ID
    # And no source was recorded as failing
    table = payers.settings.ledger_table
    assert source_status.failed_sources(clients.dynamodb(), table, [PAYER, OTHER_PAYER, RECEIVER]) == []


def test_a_message_naming_an_unconfigured_role_fails_alone_with_its_reason(
    payers: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch: two invoices of configured payers, and one whose message names a role that
    # SOURCE_ROLE_ARNS does not hold (the message says so; the configuration decides)
    good = [first_invoice(payers, PAYER), first_invoice(payers, OTHER_PAYER)]
    stray = first_invoice(payers, RECEIVER)
    bodies = [
        message_through(ROLE, good[0]),
        message_through(NOT_CONFIGURED, stray),
        message_through(OTHER_ROLE, good[1]),
    ]
    assumptions_before = len(assumed_by_archiver(RECEIVER))
    capsys.readouterr()

    # When the fetcher handles the batch
    response = payers.fetch(bodies)

    # Then nothing is retried: the two good invoices are archived ...
    assert response == {"batchItemFailures": []}
    assert_archived(payers, good)
    # ... the stray one is FAILED, its reason naming the role and why, and the role was never assumed
    item = ledger_item(payers, stray)
    assert item["status"] == "FAILED"
    assert item["last_error"] == (
        f"source unavailable: cannot assume {NOT_CONFIGURED}: not one of the configured SOURCE_ROLE_ARNS"
    )
    assert "lease_owner" not in item
    assert len(assumed_by_archiver(RECEIVER)) == assumptions_before
    assert not [k for k in payers.object_keys() if stray.invoice_id in k]
    # ... and the source's own record says so, at the fetching stage
    [record] = source_status.failed_sources(
        clients.dynamodb(), payers.settings.ledger_table, [PAYER, OTHER_PAYER, RECEIVER]
    )
    assert (record["role_arn"], record["stage"], record["status"]) == (NOT_CONFIGURED, "fetching", "FAILED")
    assert record["reason"] == item["last_error"]
    # ... counted once as a failed source and once as a failed invoice
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(sum(m.get("SourcesFailed", [])) for m in emitted) == 1
    assert sum(sum(m.get("InvoicesFailed", [])) for m in emitted) == 1


def test_a_role_sts_refuses_fails_its_invoice_with_the_access_denied_reason(payers: Pipeline) -> None:
    # Given a configured payer role that STS now refuses (its trust policy changed), and a fresh process
    invoice = first_invoice(payers, OTHER_PAYER)
    body = message_through(OTHER_ROLE, invoice)
    payers.sandbox.refuse_assume_role(OTHER_ROLE, "trust policy does not name the archive account")
    clients.reset()  # also forgets dal.sources' assumed sessions

    # When the fetcher handles its invoice
    response = payers.fetch([body])

    # Then it is FAILED, not retried, with STS's code and message, and the source is recorded
    assert response == {"batchItemFailures": []}
    item = ledger_item(payers, invoice)
    assert item["status"] == "FAILED"
    assert item["last_error"] == (
        f"source unavailable: cannot assume {OTHER_ROLE}: AccessDenied: "
        "trust policy does not name the archive account"
    )
    [record] = source_status.failed_sources(clients.dynamodb(), payers.settings.ledger_table, [OTHER_PAYER])
    assert (record["role_arn"], record["stage"]) == (OTHER_ROLE, "fetching")


def test_an_invoice_read_through_a_role_the_api_denies_names_the_role(payers: Pipeline) -> None:
    # Given a message naming a configured role that cannot read the invoice's account (another payer's)
    invoice = first_invoice(payers, PAYER)
    body = message_through(OTHER_ROLE, invoice, read_as=ROLE)

    # When the fetcher handles it
    response = payers.fetch([body])

    # Then GetInvoicePDF was denied once (AccessDeniedException is permanent), the invoice is FAILED
    # with a reason naming the role, and the source is recorded as failing
    assert response == {"batchItemFailures": []}
    assert emulator_stats(payers)["denied"] == 1
    item = ledger_item(payers, invoice)
    assert item["status"] == "FAILED"
    assert str(item["last_error"]).startswith(
        f"source unavailable: {OTHER_ROLE} is denied GetInvoicePDF: AccessDeniedException: "
    )
    [record] = source_status.failed_sources(clients.dynamodb(), payers.settings.ledger_table, [PAYER])
    assert (record["role_arn"], record["reason"]) == (OTHER_ROLE, item["last_error"])
