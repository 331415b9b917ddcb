"""Several payers on the sandbox: moto's STS refusing AssumeRole of chosen roles, the payer set-up
(`Identity.payers`, `Sandbox.archive_env`), the scenario's `identity` section and the `sandbox` command's
identity options. Everything through boto3 against the running servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sandbox_testkit import by_period

from invoice_archiver.models.source import parse_sources
from invoice_archiver.sandbox import scenario
from invoice_archiver.sandbox.identity import ARCHIVE_ACCOUNT, Identity, InvoiceUnit
from invoice_archiver.sandbox.runner import Sandbox
from tests.sandbox_banner import read_banner

ROOT = Path(__file__).resolve().parents[2]
PAYER, OTHER_PAYER, RECEIVER = "123456789012", "210987654321", "345678901234"  # SMALL_DATASET's accounts
UNIT = InvoiceUnit(PAYER, "unit-1", "EMEA", RECEIVER)
ROLE = f"arn:aws:iam::{PAYER}:role/invoice-archiver-reader"
OTHER_ROLE = f"arn:aws:iam::{OTHER_PAYER}:role/invoice-archiver-reader"


def assume(role_arn: str) -> dict[str, str]:
    response = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="invoice-archiver")
    credentials: dict[str, str] = response["Credentials"]
    return credentials


def refusal(role_arn: str) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        assume(role_arn)
    return dict(caught.value.response)


def invoicing(**credentials: str) -> Any:
    """An invoicing client with base credentials, or with the given ones; no retries."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1})
    return boto3.client("invoicing", config=config, **credentials)


def as_role(role_arn: str) -> Any:
    return invoicing(**_keys(assume(role_arn)))


# --- the refusal knob ------------------------------------------------------------------------------


def test_refused_role_gets_access_denied_and_others_are_assumed(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given a sandbox whose STS refuses one role, with a message
    box = make_sandbox(refused_roles={OTHER_ROLE: "trust policy does not name the archive account"})

    # When both roles are assumed / Then the refused one is AccessDenied (403) with that message
    response = refusal(OTHER_ROLE)
    assert response["Error"]["Code"] == "AccessDenied"
    assert response["Error"]["Message"] == "trust policy does not name the archive account"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # And the other role is assumed as moto always does (no IAM role needs to exist)
    assert boto3.client("sts", **_keys(assume(ROLE))).get_caller_identity()["Account"] == PAYER
    assert box.moto is not None
    assert box.moto.requests.count(service="sts", operation="AssumeRole") == 2


def test_refusal_can_be_switched_on_and_off_while_running(sandbox: Sandbox) -> None:
    # Given a role that can be assumed
    assert assume(ROLE)["AccessKeyId"]

    # When the sandbox refuses it (default message) / Then AssumeRole fails, naming the role
    sandbox.refuse_assume_role(ROLE)
    response = refusal(ROLE)
    assert response["Error"]["Code"] == "AccessDenied"
    assert ROLE in response["Error"]["Message"]
    assert sandbox.refused_roles == {ROLE: response["Error"]["Message"]}

    # When it is allowed again / Then AssumeRole works again
    sandbox.allow_assume_role(ROLE)
    assert assume(ROLE)["AccessKeyId"]
    assert sandbox.refused_roles == {}


def test_refusal_reaches_moto_in_a_child_process(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given moto in a child process, refusing a role from the start
    box = make_sandbox(moto_in_process=False, refused_roles={ROLE: None})

    # Then AssumeRole of it fails there too; but it cannot be changed afterwards from here
    assert refusal(ROLE)["Error"]["Code"] == "AccessDenied"
    assert assume(OTHER_ROLE)["AccessKeyId"]
    with pytest.raises(RuntimeError, match="moto in this process"):
        box.refuse_assume_role(OTHER_ROLE)


# --- payers, roles and invoice units -----------------------------------------------------------------


def test_payers_read_through_their_roles_and_archive_env_names_them(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    # Given enforced identity with one invoice unit (PAYER manages RECEIVER)
    box = make_sandbox(identity=Identity.payers([UNIT]))

    # When the archiver's variables are asked for
    env = box.archive_env()
    sources = {s.account_id: s.role_arn for s in parse_sources(env["SOURCE_ROLE_ARNS"].split(","))}

    # Then every account is a source: payers through their own role, the receiver through its manager's
    assert sources == {PAYER: ROLE, OTHER_PAYER: OTHER_ROLE, RECEIVER: ROLE}
    assert "ACCOUNT_IDS" not in env
    # And the base credentials read nothing, while each role reads what its source names
    with pytest.raises(ClientError) as denied:
        invoicing().list_invoice_summaries(**by_period(2026, 9, PAYER))
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    for account, role in sources.items():
        assert role is not None
        listed = as_role(role).list_invoice_summaries(**by_period(2026, 9, account))["InvoiceSummaries"]
        assert listed
        assert {s["AccountId"] for s in listed} == {account}
    # And with discovery only the payers are named; the lister finds the receiver with ListInvoiceUnits
    discovered = box.archive_env(discover=True)
    assert discovered == {"SOURCE_ROLE_ARNS": f"{ROLE},{OTHER_ROLE}", "DISCOVER_INVOICE_UNITS": "true"}
    units = as_role(ROLE).list_invoice_units()["InvoiceUnits"]
    assert [u["InvoiceReceiver"] for u in units] == [RECEIVER]


def test_without_identity_archive_env_is_account_ids(sandbox: Sandbox) -> None:
    assert sandbox.archive_env() == {"ACCOUNT_IDS": ",".join(sandbox.dataset.accounts)}


# --- the scenario's identity section -------------------------------------------------------------------

SCENARIO = {
    "generate": {"seed": 3, "accounts": [PAYER, RECEIVER], "periods": ["2026-09"]},
    "identity": {
        "archive_account": "111122223333",
        "role_name": "reader",
        "invoice_units": [{"management_account": PAYER, "receiver": RECEIVER, "name": "EMEA"}],
        "refuse_assume_role": [f"arn:aws:iam::{PAYER}:role/reader"],
    },
}


def test_scenario_identity_section_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "payers.json"
    path.write_text(json.dumps(SCENARIO))

    loaded = scenario.load_scenario(path)

    assert loaded.identity is not None
    assert loaded.identity.enforce
    assert loaded.identity.accounts_by_key == {"testing": "111122223333"}
    assert [(u.management_account, u.receiver, u.name) for u in loaded.identity.invoice_units] == [
        (PAYER, RECEIVER, "EMEA")
    ]
    assert loaded.refused_roles == (f"arn:aws:iam::{PAYER}:role/reader",)
    assert loaded.identity.source_role_arns(loaded.dataset.accounts) == (
        f"arn:aws:iam::{PAYER}:role/reader",
        f"{RECEIVER}=arn:aws:iam::{PAYER}:role/reader",
    )
    assert scenario.load(path).accounts == [PAYER, RECEIVER]


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        ([], "'identity' must be an object"),
        ({"enforced": True}, "unknown key 'enforced'"),
        ({"archive_account": "12"}, "archive_account must be a 12-digit account id"),
        ({"role_name": "a b"}, "is not an IAM role name"),
        ({"invoice_units": [{"management_account": PAYER}]}, "must be 12-digit account ids"),
        ({"invoice_units": [{"management_account": PAYER, "receiver": RECEIVER, "rule": 1}]}, "unknown key"),
        ({"refuse_assume_role": ["role/x"]}, "must be a list of IAM role ARNs"),
    ],
)
def test_scenario_identity_section_is_checked(identity: Any, message: str) -> None:
    with pytest.raises(scenario.ScenarioError, match=message):
        scenario.parse_scenario(json.dumps({**SCENARIO, "identity": identity}))


# --- the sandbox command ---------------------------------------------------------------------------------


@pytest.fixture
def sandbox_command() -> Iterator[Callable[..., dict[str, str]]]:
    """Start `python -m invoice_archiver.sandbox ARGS`; returns its export lines and `# ...` lines."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "invoice_archiver.sandbox", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(proc)
        banner = read_banner(proc.stdout)
        return {**banner.exports, **banner.comments()}

    yield start
    for proc in started:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0


def test_sandbox_command_with_identity_prints_sources_and_refuses_a_role(
    sandbox_command: Callable[..., dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given `invoice-archiver sandbox` with identity, an invoice unit and a refused role
    lines = sandbox_command(
        "--seed", "5", "--accounts", f"{PAYER},{OTHER_PAYER},{RECEIVER}", "--periods", "2026-09",
        "--invoices-per-period", "1", "--identity", "--invoice-unit", f"{PAYER}={RECEIVER}",
        "--refuse-assume-role", OTHER_ROLE,
    )  # fmt: skip

    # Then it prints SOURCE_ROLE_ARNS (not ACCOUNT_IDS) and what it enforces
    assert "ACCOUNT_IDS" not in lines
    sources = {s.account_id: s.role_arn for s in parse_sources(lines["SOURCE_ROLE_ARNS"].split(","))}
    assert sources == {PAYER: ROLE, OTHER_PAYER: OTHER_ROLE, RECEIVER: ROLE}
    assert f"base credentials act as {ARCHIVE_ACCOUNT}" in lines["identity"]
    assert f"{PAYER} -> {RECEIVER}" in lines["identity"]
    assert OTHER_ROLE in lines["identity"]
    # And with only its exported variables, the refused role is AccessDenied and the receiver is
    # readable through its management account's role
    for name, value in lines.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    assert refusal(OTHER_ROLE)["Error"]["Code"] == "AccessDenied"
    listed = as_role(ROLE).list_invoice_summaries(**by_period(2026, 9, RECEIVER))["InvoiceSummaries"]
    assert [s["AccountId"] for s in listed] == [RECEIVER]


def test_sandbox_command_discovery_prints_only_payers(sandbox_command: Callable[..., dict[str, str]]) -> None:
    lines = sandbox_command(
        "--seed", "5", "--accounts", f"{PAYER},{RECEIVER}", "--periods", "2026-09",
        "--invoice-unit", f"{PAYER}={RECEIVER}", "--identity", "--discover-invoice-units",
    )  # fmt: skip
    assert lines["SOURCE_ROLE_ARNS"] == ROLE
    assert lines["DISCOVER_INVOICE_UNITS"] == "true"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--invoice-unit", f"{PAYER}:{RECEIVER}"], "is not MANAGEMENT=RECEIVER"),
        (["--refuse-assume-role", "reader"], "is not an IAM role ARN"),
        (["--archive-account", "12"], "is not a 12-digit account id"),
        (["--discover-invoice-units"], "--discover-invoice-units needs --identity"),
    ],
)
def test_sandbox_command_refuses_bad_identity_options(args: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-m", "invoice_archiver.sandbox", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def _keys(credentials: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
