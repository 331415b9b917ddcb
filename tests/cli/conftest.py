"""The console script as a person runs it, on a sandbox: a moto server and the Invoicing emulator run in the
test process (so a test can look at S3, SQS and the ledger directly), and `invoice-archiver` runs as a
subprocess with only the variables `invoice-archiver sandbox` would have printed. Nothing is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from invoice_archiver.infra.constants import OutputKey
from invoice_archiver.sandbox.dataset import Dataset, generate
from invoice_archiver.sandbox.runner import Sandbox

CLI = str(Path(sys.executable).with_name("invoice-archiver"))
BUCKET = "invoice-archive-local"  # run-local's names: every command finds them without configuration
TABLE = "invoice-archiver-ledger-local"
STACK_ACCOUNT = "210987654321"  # the only account the test stack's lister is configured with
PIPELINE_VARS = (
    "ARCHIVE_BUCKET",
    "ARCHIVE_PREFIX",
    "LEDGER_TABLE",
    "INVOICE_QUEUE_URL",
    "DEAD_LETTER_QUEUE_URL",
    "ACCOUNT_IDS",
    "RECEIVER_ROLES",
    "LOOKBACK_PERIODS",
    "SPOOL_DIRECTORY",
)
# Two complete months (September, October) and one more (August); 3 accounts x 3 invoices each.
DATASET = generate(
    seed=11,
    periods=((2026, 8), (2026, 9), (2026, 10)),
    invoices_per_account_period=3,
    document_size=(2048, 4096),
    supplemental=(1, 3),
)


def clean_env(**extra: str) -> dict[str, str]:
    """A person's shell with fake credentials and none of the archiver's or AWS's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in PIPELINE_VARS}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_CONFIG_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def field(output: str, label: str, occurrence: int = 0) -> int:
    """The number at the end of a report line that starts with `label`."""
    values = [int(line.split()[-1]) for line in output.splitlines() if line.strip().startswith(label)]
    return values[occurrence]


@dataclass
class Local:
    """A sandbox in this process, and the console script pointed at it from a working directory."""

    box: Sandbox
    cwd: Path
    env: dict[str, str]

    @property
    def dataset(self) -> Dataset:
        return self.box.dataset

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), {**self.env, **env}, self.cwd)

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.box.moto_url, region_name="us-east-1")

    def object_keys(self, prefix: str = "invoices/") -> list[str]:
        paginator = self.client("s3").get_paginator("list_objects_v2")
        return [
            o["Key"]
            for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix)
            for o in page.get("Contents", [])
        ]

    def ledger(self) -> dict[str, dict[str, Any]]:
        items = boto3.resource("dynamodb", endpoint_url=self.box.moto_url).Table(TABLE).scan()["Items"]
        return {str(item["invoice_id"]): item for item in items}


@pytest.fixture
def make_local(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> Callable[..., Local]:
    """Factory: make_local(dataset=DATASET, faults=...) -> Local, in a fresh working directory."""

    def factory(dataset: Dataset | None = None, **kwargs: Any) -> Local:
        box = make_sandbox(dataset if dataset is not None else DATASET, **kwargs)
        exported = dict(box.env)
        exported["ACCOUNT_IDS"] = ",".join(box.dataset.accounts)  # as `invoice-archiver sandbox` exports
        cwd = tmp_path / "work"
        cwd.mkdir(exist_ok=True)
        return Local(box=box, cwd=cwd, env=clean_env(**exported))

    return factory


@pytest.fixture
def local(make_local: Callable[..., Local]) -> Local:
    return make_local()


def invoices_of(dataset: Dataset, *periods: tuple[int, int]) -> list[Any]:
    return [invoice for invoice in dataset.invoices if invoice.billing_period in periods]


def _stack_template() -> dict[str, Any]:
    table_keys = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    return {
        "Resources": {
            "Archive": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"VersioningConfiguration": {"Status": "Enabled"}},
            },
            "Ledger": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                    "KeySchema": table_keys,
                },
            },
            "DeadLetters": {"Type": "AWS::SQS::Queue"},
            # The lister's configuration is where a backfill on the stack finds the accounts to list.
            "ListerRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                },
            },
            "Lister": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.13",
                    "Handler": "invoice_archiver.handlers.lister.handler",
                    "Role": {"Fn::GetAtt": ["ListerRole", "Arn"]},
                    "Code": {"ZipFile": "def handler(event, context): pass"},
                    "Environment": {"Variables": {"ACCOUNT_IDS": STACK_ACCOUNT}},
                },
            },
            "Invoices": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": 60,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetters", "Arn"]},
                        "maxReceiveCount": 5,
                    },
                },
            },
        },
        "Outputs": {
            OutputKey.ARCHIVE_BUCKET: {"Value": {"Ref": "Archive"}},
            OutputKey.LEDGER_TABLE: {"Value": {"Ref": "Ledger"}},
            OutputKey.INVOICE_QUEUE: {"Value": {"Ref": "Invoices"}},
            OutputKey.DEAD_LETTER_QUEUE: {"Value": {"Ref": "DeadLetters"}},
            OutputKey.LISTER_FUNCTION: {"Value": {"Ref": "Lister"}},
        },
    }


@pytest.fixture
def stack(local: Local) -> dict[str, str]:
    """A CloudFormation stack with the archiver's outputs (no functions: the fetcher runs below)."""
    cloudformation = local.client("cloudformation")
    cloudformation.create_stack(
        StackName="Archiver", TemplateBody=json.dumps(_stack_template()), Capabilities=["CAPABILITY_IAM"]
    )
    outputs = cloudformation.describe_stacks(StackName="Archiver")["Stacks"][0]["Outputs"]
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}
