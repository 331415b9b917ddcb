"""The real handlers, logic and data access on the sandbox: moto's server and the Invoicing emulator."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from invoice_archiver.config import Settings, load_settings
from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY
from invoice_archiver.dal import archive, clients, invoicing
from invoice_archiver.dal.ledger.records import LedgerKey, invoice_record
from invoice_archiver.handlers import environment, fetcher
from invoice_archiver.local import resources
from invoice_archiver.local.event_source import EventSourceMapping
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.local.pipeline import PassReport, run_pass
from invoice_archiver.logic.archived_documents import archived_documents
from invoice_archiver.logic.invoice_messages import to_message
from invoice_archiver.models.documents import INVOICE_DOCUMENT
from invoice_archiver.observability import logger
from invoice_archiver.sandbox.dataset import Dataset
from invoice_archiver.sandbox.documents import document_bytes
from invoice_archiver.sandbox.invoice import Invoice
from invoice_archiver.sandbox.runner import Sandbox
from tests.iam import recordings
from tests.iam.recorder import Recorder

BUCKET = "invoice-archive-test"
TABLE = "invoice-ledger-test"


@dataclass
class Pipeline:
    """A sandbox with the archiver's resources created and its configuration in the environment."""

    sandbox: Sandbox
    settings: Settings
    logs: io.StringIO

    @property
    def dataset(self) -> Dataset:
        return self.sandbox.dataset

    def run(self, event: dict[str, Any] | None = None, workers: int = 4) -> PassReport:
        return run_pass(event or {"billing_periods": self.periods()}, self.settings, workers=workers)

    def periods(self) -> list[str]:
        return sorted({f"{y:04d}-{m:02d}" for y, m in (i.billing_period for i in self.dataset.invoices)})

    def fetch(self, bodies: list[str]) -> dict[str, Any]:
        """Invoke the fetcher handler once with these message bodies as one SQS batch."""
        records = [sqs_record(body, f"msg-{n}") for n, body in enumerate(bodies)]
        try:
            response: dict[str, Any] = fetcher.handler({"Records": records}, LocalContext("fetcher-test"))
        except BatchProcessingError:  # every record failed: Lambda's event source retries them all
            return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
        return response

    def drain(self, workers: int = 4) -> None:
        EventSourceMapping(
            clients.sqs(), self.settings.invoice_queue_url, self._invoke, workers=workers
        ).drain()

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = fetcher.handler(event, LocalContext("fetcher-test"))
        return response

    def queue_bodies(self, queue_url: str) -> list[dict[str, Any]]:
        """Receive (and keep hidden) every message on a queue: bodies plus message attributes."""
        sqs = clients.sqs()
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=60,
            ).get("Messages", [])
            if not messages:
                return found
            found += [{"body": m["Body"], "attributes": m.get("MessageAttributes", {})} for m in messages]

    def ledger(self) -> dict[str, dict[str, Any]]:
        table = boto3.resource("dynamodb").Table(self.settings.ledger_table)
        items = table.scan(ConsistentRead=True)["Items"]
        # Invoices only: a source's own record (sk SOURCE, dal/ledger/source_records.py) has no invoice id.
        return {str(item["invoice_id"]): item for item in items if "invoice_id" in item}

    def stored_item(self, key: LedgerKey) -> dict[str, Any] | None:
        """An invoice's item as DynamoDB stores it, read past the code under test."""
        item = (
            boto3.resource("dynamodb")
            .Table(self.settings.ledger_table)
            .get_item(
                Key={LEDGER_PARTITION_KEY: key.account_id, LEDGER_SORT_KEY: f"{key.period}#{key.invoice_id}"},
                ConsistentRead=True,
            )
        )
        found: dict[str, Any] | None = item.get("Item")
        return found

    def object_keys(self) -> list[str]:
        paginator = clients.s3().get_paginator("list_objects_v2")
        return [
            obj["Key"]
            for page in paginator.paginate(Bucket=self.settings.archive_bucket)
            for obj in page.get("Contents", [])
        ]

    def log_text(self) -> str:
        return self.logs.getvalue()


def sqs_record(body: str, message_id: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:invoices",
        "awsRegion": "us-east-1",
    }


def message_for(invoice_id: str) -> str:
    """The lister's message for one invoice, built from the emulator's summary as the lister does."""
    client = clients.invoicing("us-east-1", 3)
    request = {"Selector": {"ResourceType": "INVOICE_ID", "Value": invoice_id}}
    [summary] = list(invoicing.iter_summaries(client, request))
    return to_message(summary).model_dump_json()


def _reset_caches() -> None:
    environment.reset()
    clients.reset()
    fetcher.context.cache_clear()


@pytest.fixture(scope="session")
def iam_recordings() -> Path:
    """This worker's file of the functions' recorded requests (tests/iam/recordings.py)."""
    return recordings.worker_file("integration")


@pytest.fixture(autouse=True)
def recorded_requests(request: pytest.FixtureRequest, iam_recordings: Path) -> Iterator[Recorder]:
    """Every request the handlers send in the test, recorded through botocore's hooks (tests/iam); the
    test fails if one is an operation the IAM mapping does not know."""
    recorder = Recorder().install()
    clients.reset()  # clients created from now on are hooked
    try:
        yield recorder
    finally:
        recorder.uninstall()
    calls = recorder.take()
    recordings.append(iam_recordings, calls, request.node.nodeid)
    unknown = recordings.unmapped(calls)
    assert not unknown, "requests tests/iam/actions.py does not map to IAM actions:\n" + "\n".join(unknown)


@pytest.fixture
def make_pipeline(
    make_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Pipeline]]:
    """Factory: make_pipeline(dataset=..., faults=..., env={"RECEIVER_ROLES": "BUYER"}) -> Pipeline."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    original = handler.stream

    def factory(dataset: Dataset | None = None, env: dict[str, str] | None = None, **kwargs: Any) -> Pipeline:
        box = make_sandbox(dataset, **kwargs)
        settings_env = {
            "ARCHIVE_BUCKET": BUCKET,
            "LEDGER_TABLE": TABLE,
            "ACCOUNT_IDS": ",".join(box.dataset.accounts),
            "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            **(env or {}),
        }
        for name, value in settings_env.items():
            monkeypatch.setenv(name, value)
        _reset_caches()
        resources.ensure_bucket(BUCKET)
        resources.ensure_table(TABLE)
        queue_url, dlq_url = resources.ensure_queues("invoices-test")
        monkeypatch.setenv("INVOICE_QUEUE_URL", queue_url)
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
        monkeypatch.setenv("LISTING_QUEUE_URL", resources.ensure_listing_queue("listing-test", dlq_url))
        _reset_caches()
        logs = io.StringIO()
        handler.setStream(logs)
        assert box.emulator is not None
        assert box.moto is not None
        box.emulator.reset_stats()
        box.moto.requests.reset()
        return Pipeline(sandbox=box, settings=load_settings(), logs=logs)

    yield factory
    handler.setStream(original)
    _reset_caches()


def expected_documents(invoice: Invoice) -> dict[tuple[str, str], bytes]:
    """What the emulator serves for an invoice, keyed as the archive names them (type, id)."""
    expected = {}
    for doc in invoice.documents:
        doc_id = invoice.invoice_id if doc.document_type == INVOICE_DOCUMENT else doc.document_id
        expected[(doc.document_type, doc_id)] = document_bytes(doc)
    return expected


def assert_archived(pipeline: Pipeline, invoices: list[Invoice]) -> None:
    """Every document byte-identical, with checksums, metadata and tags right; summary.json complete."""
    ledger = pipeline.ledger()
    for invoice in invoices:
        _assert_invoice_archived(pipeline, invoice, ledger[invoice.invoice_id])


def _assert_invoice_archived(pipeline: Pipeline, invoice: Invoice, item: dict[str, Any]) -> None:
    s3 = clients.s3()
    bucket = pipeline.settings.archive_bucket
    assert item["status"] == "ARCHIVED", item.get("last_error")
    summary = json.loads(s3.get_object(Bucket=bucket, Key=str(item["summary_key"]))["Body"].read())
    assert summary["invoice_id"] == invoice.invoice_id
    assert summary["account_id"] == invoice.account_id
    assert summary["invoice_summary"]["InvoiceId"] == invoice.invoice_id
    for amount_field in ("BaseCurrencyAmount", "PaymentCurrencyAmount"):
        if amount_field in invoice.summary:
            assert summary["invoice_summary"][amount_field]["TotalAmount"] == str(
                invoice.summary[amount_field]["TotalAmount"]
            )
    expected = expected_documents(invoice)
    archived = {(d["document_type"], d["document_id"]): d for d in summary["documents"]}
    assert set(archived) == set(expected)
    docs_by_key = {d.document_type + "/" + d.document_id: d for d in invoice.documents}
    assert len(docs_by_key) == len(invoice.documents)
    for ident, body in expected.items():
        record = archived[ident]
        obj = s3.get_object(Bucket=bucket, Key=record["key"], ChecksumMode="ENABLED")
        data = obj["Body"].read()
        assert data == body, f"{record['key']} differs from what the emulator served"
        digest = hashlib.sha256(data).hexdigest()
        assert record["sha256"] == digest
        assert record["size"] == len(data)
        assert obj["Metadata"]["sha256"] == digest
        assert obj["Metadata"]["account-id"] == invoice.account_id
        assert obj["Metadata"]["document-type"] == ident[0]
        assert obj["ContentType"] in {"application/pdf", "application/xml"}
        tags = {
            t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=record["key"])["TagSet"]
        }
        assert tags["account"] == invoice.account_id
        assert tags["document-type"] == ident[0]
        assert tags["billing-period"] == "{:04d}-{:02d}".format(*invoice.billing_period)
        assert len(tags) <= 10
    # (the ledger's own list, or the latest summary's when an invoice has too many to hold: item_size.py)
    record = invoice_record(dict(item))
    recorded = archived_documents(record, lambda key: archive.get_json(s3, bucket, key)).documents
    assert {d["sha256"] for d in recorded} == {hashlib.sha256(b).hexdigest() for b in expected.values()}
