"""The emulator's identity rules: a caller reads only its own account's invoices (and, as a management
account, its invoice units' receivers'); its account comes from its access key, through moto's STS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sandbox_testkit import by_period

from invoice_archiver.sandbox import shapes
from invoice_archiver.sandbox.identity import ALL_ACCOUNTS, Identity, InvoiceUnit
from invoice_archiver.sandbox.runner import Sandbox

ARCHIVE = "999999999999"  # the archive account: a payer of nothing
PAYER, OTHER_PAYER, RECEIVER = "123456789012", "210987654321", "345678901234"  # the dataset's accounts
UNIT = InvoiceUnit(PAYER, "unit-1", "EMEA subsidiary", RECEIVER, (RECEIVER,), "invoices for the EMEA entity")


def enforced(**kwargs: Any) -> Identity:
    return Identity(enforce=True, accounts_by_key={"testing": ARCHIVE}, **kwargs)


def client_as(credentials: dict[str, str] | None = None) -> Any:
    """An invoicing client with base credentials, or with the given (assumed) ones; no retries."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1})
    if credentials is None:
        return boto3.client("invoicing", config=config)
    return boto3.client(
        "invoicing",
        config=config,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def assume(account: str) -> dict[str, str]:
    """Credentials of a role in `account`, from moto's STS, as the archiver gets them."""
    role = f"arn:aws:iam::{account}:role/invoice-archiver-reader"
    response = boto3.client("sts").assume_role(
        RoleArn=role, RoleSessionName="invoice-archiver", ExternalId="x1"
    )
    credentials: dict[str, str] = response["Credentials"]
    return credentials


def first_invoice(box: Sandbox, account: str) -> Any:
    return next(inv for inv in box.dataset.invoices if inv.account_id == account)


def summaries(client: Any, account: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.list_invoice_summaries(**by_period(2026, 9, account))[
        "InvoiceSummaries"
    ]
    return found


def error_of(call: Callable[[], object]) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return {
        "code": caught.value.response["Error"]["Code"],
        "status": caught.value.response["ResponseMetadata"]["HTTPStatusCode"],
        "message": caught.value.response["Error"]["Message"],
    }


def test_off_by_default_the_base_credentials_read_every_account(sandbox: Sandbox) -> None:
    client = client_as()
    for account in (PAYER, OTHER_PAYER, RECEIVER):
        assert summaries(client, account)
    assert sandbox.emulator is not None
    assert sandbox.emulator.stats.snapshot().get("denied", 0) == 0


def test_enforced_base_credentials_of_the_archive_account_read_no_payer(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(identity=enforced())
    client = client_as()
    # When the archive account's own credentials list a payer's invoices or fetch one
    listing = error_of(lambda: summaries(client, PAYER))
    fetching = error_of(lambda: client.get_invoice_pdf(InvoiceId=first_invoice(box, PAYER).invoice_id))
    # Then both are AccessDeniedException, HTTP 403, naming the caller and the action, as the service does
    assert listing["code"] == fetching["code"] == "AccessDeniedException"
    assert listing["status"] == fetching["status"] == 403
    assert listing["message"].startswith(f"User: arn:aws:iam::{ARCHIVE}:user/testing is not authorized")
    assert "invoicing:ListInvoiceSummaries" in listing["message"]
    assert "invoicing:GetInvoicePDF" in fetching["message"]
    # And botocore raises the modelled class
    with pytest.raises(client.exceptions.AccessDeniedException):
        summaries(client, PAYER)
    assert box.emulator is not None
    assert box.emulator.stats.snapshot()["denied"] == 3


def test_an_assumed_role_reads_its_own_account_only(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(identity=enforced())
    client = client_as(assume(OTHER_PAYER))
    # Its own account: listed and fetched
    listed = summaries(client, OTHER_PAYER)
    assert listed
    assert {s["AccountId"] for s in listed} == {OTHER_PAYER}
    pdf = client.get_invoice_pdf(InvoiceId=listed[0]["InvoiceId"])["InvoicePDF"]
    assert pdf["InvoiceId"] == listed[0]["InvoiceId"]
    # Another account: denied, by account and by invoice id
    assert error_of(lambda: summaries(client, PAYER))["code"] == "AccessDeniedException"
    other = first_invoice(box, PAYER).invoice_id
    by_id = {"Selector": {"ResourceType": "INVOICE_ID", "Value": other}}
    assert error_of(lambda: client.list_invoice_summaries(**by_id))["code"] == "AccessDeniedException"
    assert error_of(lambda: client.get_invoice_pdf(InvoiceId=other))["code"] == "AccessDeniedException"
    # And an unknown id still lists nothing, and is still not found
    unknown = {"Selector": {"ResourceType": "INVOICE_ID", "Value": "NO-SUCH-INVOICE"}}
    assert client.list_invoice_summaries(**unknown)["InvoiceSummaries"] == []
    assert error_of(lambda: client.get_invoice_pdf(InvoiceId="NO-SUCH-INVOICE"))["status"] == 404


def test_a_management_account_reads_its_invoice_units_receivers(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(identity=enforced(invoice_units=(UNIT,)))
    client = client_as(assume(PAYER))
    # The receiver of its unit: listed and fetched through the payer's role
    listed = summaries(client, RECEIVER)
    assert listed
    assert {s["AccountId"] for s in listed} == {RECEIVER}
    assert client.get_invoice_pdf(InvoiceId=listed[0]["InvoiceId"])["InvoicePDF"]["InvoiceId"]
    # But not another payer's account
    assert error_of(lambda: summaries(client, OTHER_PAYER))["code"] == "AccessDeniedException"
    # And the receiver's own role does not read the management account
    receiver = client_as(assume(RECEIVER))
    assert error_of(lambda: summaries(receiver, PAYER))["code"] == "AccessDeniedException"
    assert box.emulator is not None


def test_list_invoice_units_returns_the_callers_units_in_botocores_shape(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    other_unit = InvoiceUnit(OTHER_PAYER, "unit-2", "APAC", "111122223333")
    box = make_sandbox(identity=enforced(invoice_units=(UNIT, other_unit)))
    assert box.emulator is not None
    wire = box.emulator.record_wire()
    client = client_as(assume(PAYER))
    # When the management account lists its invoice units
    units = client.list_invoice_units()["InvoiceUnits"]
    # Then it gets its own unit only, every member botocore models, valid against the output shape
    assert [(u["Name"], u["InvoiceReceiver"], u["Rule"]["LinkedAccounts"]) for u in units] == [
        ("EMEA subsidiary", RECEIVER, [RECEIVER])
    ]
    assert units[0]["InvoiceUnitArn"] == f"arn:aws:invoicing::{PAYER}:invoice-unit/unit-1"
    [(operation, _, response)] = wire
    assert operation == "ListInvoiceUnits"
    assert shapes.validate_output("ListInvoiceUnits", response) == []
    # And filters apply
    assert client.list_invoice_units(Filters={"InvoiceReceivers": [OTHER_PAYER]})["InvoiceUnits"] == []
    assert len(client.list_invoice_units(Filters={"Names": ["EMEA subsidiary"]})["InvoiceUnits"]) == 1
    # And its input is validated like every other operation's
    bad = error_of(lambda: client.list_invoice_units(MaxResults=501))
    assert (bad["code"], bad["status"]) == ("ValidationException", 400)


def test_the_callers_account_is_asked_of_moto_once_per_access_key(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(identity=enforced())
    assert box.moto is not None
    client = client_as(assume(OTHER_PAYER))
    before = box.moto.requests.count(service="sts")
    for _ in range(3):
        summaries(client, OTHER_PAYER)
    # One GetCallerIdentity for the new key; the answer is cached
    assert box.moto.requests.count(service="sts") == before + 1


def test_base_credentials_may_be_mapped_to_every_account(make_sandbox: Callable[..., Sandbox]) -> None:
    make_sandbox(identity=Identity(enforce=True, accounts_by_key={"testing": ALL_ACCOUNTS}))
    client = client_as()
    for account in (PAYER, OTHER_PAYER, RECEIVER):
        assert summaries(client, account)
