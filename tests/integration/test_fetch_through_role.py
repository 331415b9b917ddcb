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

from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import source_records
from invoice_archiver.dal.ledger.records import LedgerKey
from invoice_archiver.dal.sources import ROLE_SESSION_NAME
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.sandbox.identity import Identity
from invoice_archiver.sandbox.invoice import Invoice
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


def message_through(role_arn: str | None, invoice: Invoice) -> str:
    """The lister's message for `invoice`, naming `role_arn`: a pointer, as the lister sends it."""
    return InvoiceMessage(
        account_id=invoice.account_id,
        invoice_id=invoice.invoice_id,
        billing_period=str(BillingPeriod(*invoice.billing_period)),
        reason="new",
        role_arn=role_arn,
    ).body()


def assumed_by_archiver(account: str) -> list[Any]:
    """moto's record of every AssumeRole of a role in `account` made with the archiver's session name."""
    return [r for r in sts_backends[account]["aws"].assumed_roles if r.session_name == ROLE_SESSION_NAME]


def ledger_item(pipeline: Pipeline, invoice: Invoice) -> dict[str, Any]:
    key = LedgerKey(invoice.account_id, BillingPeriod(*invoice.billing_period), invoice.invoice_id)
    item = pipeline.stored_item(key)
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

    # Then it is archived, byte for byte, confirmed (ListInvoiceSummaries) and fetched (GetInvoicePDF)
    # through the role: the emulator denied nothing
    assert response == {"batchItemFailures": []}
    assert_archived(payers, [invoice])
    stats = emulator_stats(payers)
    assert stats["calls"].get("ListInvoiceSummaries", 0) == 1
    assert stats["calls"].get("GetInvoicePDF", 0) >= 1
    assert stats["denied"] == 0
    # And the fetcher assumed the role once, in the archiver's session, with the external id
    [assumption] = assumed_by_archiver(PAYER)[before:]
    assert assumption.role_arn == ROLE
    assert assumption.external_id == EXTERNAL_ID
    # And no source was recorded as failing
    table = payers.settings.ledger_table
    assert source_records.failed_sources(clients.dynamodb(), table, [PAYER, OTHER_PAYER, RECEIVER]) == []


@pytest.mark.parametrize(
    ("account", "role"),
    [(RECEIVER, NOT_CONFIGURED), (PAYER, OTHER_ROLE), (PAYER, None)],
    ids=["a-role-not-configured", "a-configured-role-for-another-account", "own-credentials-for-a-payer"],
)
def test_a_message_naming_a_source_that_is_not_configured_is_refused_and_nothing_is_read(
    payers: Pipeline, capsys: pytest.CaptureFixture[str], account: str, role: str | None
) -> None:
    # Given a batch: two invoices of configured payers, and one whose message pairs an account with a
    # role the configuration does not pair it with (the message says so; the configuration decides)
    good = [first_invoice(payers, PAYER), first_invoice(payers, OTHER_PAYER)]
    stray = next(i for i in payers.dataset.invoices if i.account_id == account and i not in good)
    bodies = [
        message_through(ROLE, good[0]),
        message_through(role, stray),
        message_through(OTHER_ROLE, good[1]),
    ]
    assumptions_before = len(assumed_by_archiver(RECEIVER))
    capsys.readouterr()

    # When the fetcher handles the batch
    response = payers.fetch(bodies)

    # Then nothing is retried: the two good invoices are archived ...
    assert response == {"batchItemFailures": []}
    assert_archived(payers, good)
    # ... the stray message is in the DLQ with its reason, and nothing was read or written for it:
    # no role assumed, no ledger item, no object, no source record
    [refused] = payers.queue_bodies(payers.settings.dead_letter_queue_url)
    assert refused["body"] == bodies[1]
    assert refused["attributes"]["ErrorType"]["StringValue"] == "SourceRefused"
    through = role or "the function's own credentials"
    assert refused["attributes"]["ErrorReason"]["StringValue"] == (
        f"account {account} through {through} is not a source of this archive: not configured "
        "(ACCOUNT_IDS, SOURCE_ROLE_ARNS)"
    )
    assert len(assumed_by_archiver(RECEIVER)) == assumptions_before
    key = LedgerKey(stray.account_id, BillingPeriod(*stray.billing_period), stray.invoice_id)
    assert payers.stored_item(key) is None
    assert not [k for k in payers.object_keys() if stray.invoice_id in k]
    table = payers.settings.ledger_table
    assert source_records.failed_sources(clients.dynamodb(), table, [PAYER, OTHER_PAYER, RECEIVER]) == []
    # ... counted as a refused source, not as a failed one
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(sum(m.get("SourcesRefused", [])) for m in emitted) == 1
    assert sum(sum(m.get("SourcesFailed", [])) for m in emitted) == 0


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
    [record] = source_records.failed_sources(clients.dynamodb(), payers.settings.ledger_table, [OTHER_PAYER])
    assert (record.role_arn, record.stage) == (OTHER_ROLE, "fetching")


def test_an_invoice_read_through_a_configured_role_the_api_denies_names_the_role(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given a payer configured, by mistake, to be read through another payer's role: a configured
    # source, which the API denies (that role may not read this payer's invoices)
    pipeline = make_pipeline(
        identity=Identity.payers(),
        env={
            "ACCOUNT_IDS": RECEIVER,
            "SOURCE_ROLE_ARNS": f"{PAYER}={OTHER_ROLE}",
            "SOURCE_EXTERNAL_ID": EXTERNAL_ID,
        },
    )
    invoice = first_invoice(pipeline, PAYER)

    # When the fetcher handles its invoice
    response = pipeline.fetch([message_through(OTHER_ROLE, invoice)])

    # Then the API was asked once and said no (AccessDeniedException is permanent): the invoice is
    # FAILED with a reason naming the role, nothing was written to S3, and the source is recorded
    assert response == {"batchItemFailures": []}
    assert emulator_stats(pipeline)["denied"] == 1
    item = ledger_item(pipeline, invoice)
    assert item["status"] == "FAILED"
    assert str(item["last_error"]).startswith(
        f"source unavailable: {OTHER_ROLE} is denied by the Invoicing API: AccessDeniedException: "
    )
    assert pipeline.object_keys() == []
    [record] = source_records.failed_sources(clients.dynamodb(), pipeline.settings.ledger_table, [PAYER])
    assert (record.role_arn, record.reason) == (OTHER_ROLE, item["last_error"])
