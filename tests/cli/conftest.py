"""The console script as a person runs it, on a sandbox: a moto server and the Invoicing emulator run in the
test process (so a test can look at S3, SQS and the ledger directly), and `invoice-archiver` runs as a
subprocess with only the variables `invoice-archiver sandbox` would have printed. Nothing is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from invoice_archiver.dal import clients
from invoice_archiver.handlers import environment, fetcher, lister
from invoice_archiver.infra.constants import OutputKey
from invoice_archiver.local.event_source import EventSourceMapping
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.sandbox.dataset import Dataset, generate
from invoice_archiver.sandbox.runner import Sandbox
from tests.cli.aws_proxy import AwsProxy
from tests.integration.conftest import make_pipeline  # noqa: F401  (the integration tier's fixture)

CLI = str(Path(sys.executable).with_name("invoice-archiver"))
BUCKET = "invoice-archive-local"  # run-local's names: every command finds them without configuration
TABLE = "invoice-archiver-ledger-local"
STACK_ACCOUNT = "210987654321"  # the only account the test stack's lister is configured with
LISTER_TIMEOUT = (
    60  # the test stack's lister's timeout (the command waits that long for its answer, plus 60 s)
)
LISTING_QUEUE_OUTPUT = (
    "TestListingQueueUrl"  # for the tests only: the command reads the lister's configuration
)
PIPELINE_VARS = (
    "ARCHIVE_BUCKET",
    "ARCHIVE_PREFIX",
    "LEDGER_TABLE",
    "INVOICE_QUEUE_URL",
    "LISTING_QUEUE_URL",
    "LISTING_RESERVE_SECONDS",
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

    def ledger(self, table: str = TABLE) -> dict[str, dict[str, Any]]:
        items = boto3.resource("dynamodb", endpoint_url=self.box.moto_url).Table(table).scan()["Items"]
        return {str(item["invoice_id"]): item for item in items if "invoice_id" in item}


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
                    "Timeout": LISTER_TIMEOUT,
                    "Environment": {
                        "Variables": {
                            "ACCOUNT_IDS": STACK_ACCOUNT,
                            "LEDGER_TABLE": {"Ref": "Ledger"},
                            "INVOICE_QUEUE_URL": {"Ref": "Invoices"},
                            "LISTING_QUEUE_URL": {"Ref": "Listings"},
                            "DEAD_LETTER_QUEUE_URL": {"Ref": "DeadLetters"},
                        }
                    },
                },
            },
            "Listings": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": 60,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetters", "Arn"]},
                        "maxReceiveCount": 5,
                    },
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
            LISTING_QUEUE_OUTPUT: {"Value": {"Ref": "Listings"}},
        },
    }


@pytest.fixture
def stack(local: Local) -> dict[str, str]:
    """A CloudFormation stack with the archiver's outputs (its functions are placeholders: see Deployed)."""
    cloudformation = local.client("cloudformation")
    cloudformation.create_stack(
        StackName="Archiver", TemplateBody=json.dumps(_stack_template()), Capabilities=["CAPABILITY_IAM"]
    )
    outputs = cloudformation.describe_stacks(StackName="Archiver")["Stacks"][0]["Outputs"]
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


class Deployed:
    """The stack's functions as Lambda runs them: the real handlers in this process, with the stack's
    configuration. The command reaches AWS through `proxy` (moto's server behind it), which answers
    Lambda's Invoke of the lister with the real lister handler and can deny what IAM would deny. The
    fetcher (and the lister's listing-queue consumer) are event source mappings on threads, started on
    demand."""

    def __init__(self, local: Local, stack: dict[str, str], proxy: AwsProxy) -> None:
        self.local, self.stack, self.proxy = local, stack, proxy
        self.invocations: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        proxy.invoke = self._invoke

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The console script, with every AWS call going through the proxy."""
        return self.local.cli(*args, AWS_ENDPOINT_URL=self.proxy.url, **env)

    def _invoke(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        assert name == self.stack[OutputKey.LISTER_FUNCTION], name
        self.invocations.append(event)
        response: dict[str, Any] = lister.handler(event, LocalContext(name, timeout_seconds=LISTER_TIMEOUT))
        return response

    def start_fetcher(self) -> None:
        self._consume(self.stack[OutputKey.INVOICE_QUEUE], fetcher.handler, "Archiver-Fetcher", workers=2)

    def start_listing_consumer(self) -> None:
        """The lister's event source mapping on the listing queue (batch size 1, as the stack sets)."""
        self._consume(self.stack[LISTING_QUEUE_OUTPUT], lister.handler, "Archiver-Lister", batch_size=1)

    def _consume(
        self, queue_url: str, handler: Any, name: str, workers: int = 1, batch_size: int = 10
    ) -> None:
        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            response: dict[str, Any] = handler(event, LocalContext(name, timeout_seconds=LISTER_TIMEOUT))
            return response

        def poll() -> None:
            mapping = EventSourceMapping(
                clients.sqs(), queue_url, invoke, workers=workers, batch_size=batch_size
            )
            while not self._stop.wait(0.5):
                mapping.drain()

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


@pytest.fixture
def deployed(local: Local, stack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    """The stack's lister and fetcher, configured as the stack configures them."""
    for name, value in {
        "ARCHIVE_BUCKET": stack[OutputKey.ARCHIVE_BUCKET],
        "LEDGER_TABLE": stack[OutputKey.LEDGER_TABLE],
        "INVOICE_QUEUE_URL": stack[OutputKey.INVOICE_QUEUE],
        "LISTING_QUEUE_URL": stack[LISTING_QUEUE_OUTPUT],
        "DEAD_LETTER_QUEUE_URL": stack[OutputKey.DEAD_LETTER_QUEUE],
        "ACCOUNT_IDS": STACK_ACCOUNT,
        "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    environment.reset()
    clients.reset()
    fetcher.context.cache_clear()
    assert local.box.moto_url is not None
    proxy = AwsProxy(local.box.moto_url).start()
    functions = Deployed(local, stack, proxy)
    yield functions
    functions.stop()
    proxy.stop()
    environment.reset()
    fetcher.context.cache_clear()
