"""Everything that goes wrong: faults, crashes, poison messages and permanent failures. Nothing is lost."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from invoice_archiver.dal import clients
from invoice_archiver.logic import fetch_invoice
from invoice_archiver.logic.fetch_context import FetchContext
from invoice_archiver.logic.sourcing import KnownSources
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.faults import FaultInjector, Faults
from tests.integration.conftest import Pipeline, assert_archived, message_for

FAULTY = generate(seed=5, periods=((2026, 10),), invoices_per_account_period=12, document_size=(1024, 3072))


class Crash(BaseException):
    """The process dies: nothing in our code may catch this."""


def test_every_invoice_is_archived_once_through_throttling_5xx_expiry_drops_and_truncation(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given an Invoicing API that throttles 20 % of calls, fails 5 % with 5xx, and hands out URLs
    # that expire before use, connections dropped mid-body and bodies shorter than their length
    faults = Faults(
        seed=99,
        throttle_rate=0.2,
        error_rate=0.05,
        expired_url_rate=0.15,
        drop_connection_rate=0.1,
        truncate_rate=0.1,
        retry_after_seconds=0,
    )
    # (faults follow a draw per call index, whatever the thread timing: the calls every run makes at least,
    # one GetInvoicePDF per invoice and one URL and one download per document, already hold each kind)
    schedule = FaultInjector(faults)
    certain = {schedule.api_fault("GetInvoicePDF") for _ in range(FAULTY.invoice_count)}
    certain |= {"expired" if schedule.url_expired() else None for _ in range(FAULTY.document_count)}
    certain |= {schedule.download_fault() for _ in range(FAULTY.document_count)}
    assert {"throttle", "error", "expired", "drop", "truncate"} <= certain
    pipeline = make_pipeline(FAULTY, faults=faults, env={"DOWNLOAD_ATTEMPTS": "6"})

    # When the month runs through the pipeline
    report = pipeline.run()

    # Then the faults really happened ...
    stats = pipeline.sandbox.emulator.stats.snapshot()
    for fault in ("throttled", "errors_5xx", "expired_urls", "dropped", "truncated"):
        assert stats[fault] > 0, f"no {fault} fault was injected"
    # ... and still every invoice is archived, byte for byte, with verified checksums, none twice
    assert (report.archived, report.failed, report.unresolved) == (FAULTY.invoice_count, 0, 0)
    assert_archived(pipeline, FAULTY.invoices)
    # (a delivery that ran out of download attempts may have PUT some documents already; its
    # redelivery's PUTs of those are refused with 412 and verified: one version of every object)
    versions = clients.s3().list_object_versions(Bucket=pipeline.settings.archive_bucket)["Versions"]
    assert len(versions) == FAULTY.document_count + FAULTY.invoice_count
    assert len({v["Key"] for v in versions}) == len(versions)
    # ... and no log line, ledger record or error holds a pre-signed URL or its signature
    assert_no_secrets(pipeline)


def test_a_crash_between_upload_and_ledger_write_is_finished_by_the_next_delivery(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given a fetcher that dies right after its uploads, before it records ARCHIVED
    pipeline = make_pipeline()
    invoice = next(i for i in pipeline.dataset.invoices if i.supplemental)
    body = message_for(invoice.invoice_id)
    dynamodb = clients.dynamodb()

    def die_before_marking_archived(params: dict[str, Any], **_: Any) -> None:
        if ":archived" in params.get("UpdateExpression", "") and "documents" in params["UpdateExpression"]:
            raise Crash

    dynamodb.meta.events.register("before-parameter-build.dynamodb.UpdateItem", die_before_marking_archived)
    with pytest.raises(Crash):
        pipeline.fetch([body])
    dynamodb.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", die_before_marking_archived)
    keys_after_crash = set(pipeline.object_keys())
    assert len(keys_after_crash) == len(invoice.documents) + 1  # documents and summary.json landed
    assert pipeline.ledger()[invoice.invoice_id]["status"] == "IN_PROGRESS"

    # When it is redelivered while the dead worker's lease is live, it backs off ...
    assert pipeline.fetch([body])["batchItemFailures"] != []
    # ... and when redelivered after the lease expired, it takes over and finishes
    later = datetime.now(UTC) + timedelta(seconds=pipeline.settings.lease_seconds + 1)
    context = FetchContext(
        settings=pipeline.settings,
        invoicing_for=lambda source: clients.invoicing("us-east-1", 3),
        s3=clients.s3(),
        dynamodb=dynamodb,
        sources=KnownSources(pipeline.settings, lambda role: clients.invoicing("us-east-1", 3), str),
        clock=lambda: later,
    )
    outcome = fetch_invoice.archive(context, InvoiceMessage.model_validate_json(body))

    # Then the invoice is ARCHIVED and nothing was overwritten: one version of every object
    assert outcome.value == "ARCHIVED"
    assert_archived(pipeline, [invoice])
    assert set(pipeline.object_keys()) == keys_after_crash
    versions = clients.s3().list_object_versions(Bucket=pipeline.settings.archive_bucket)["Versions"]
    assert len(versions) == len(keys_after_crash)
    assert int(pipeline.ledger()[invoice.invoice_id]["attempts"]) == 2


def test_a_poison_message_goes_to_the_dlq_with_its_reason_and_the_rest_of_the_batch_is_archived(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given a batch with two good invoices, a body that is not JSON and one that breaks the schema
    pipeline = make_pipeline()
    first, second = pipeline.dataset.invoices[:2]
    wrong_schema = json.dumps({"version": 1, "account_id": "12", "invoice_id": "x"})
    batch = [message_for(first.invoice_id), "{not json", wrong_schema, message_for(second.invoice_id)]

    # When the fetcher processes it
    response = pipeline.fetch(batch)

    # Then no record is retried, both invoices are archived ...
    assert response == {"batchItemFailures": []}
    assert_archived(pipeline, [first, second])
    # ... and the two poison messages sit in the DLQ, each with the reason it can never succeed
    quarantined = pipeline.queue_bodies(pipeline.settings.dead_letter_queue_url)
    assert sorted(q["body"] for q in quarantined) == sorted(["{not json", wrong_schema])
    reasons = {q["body"]: q["attributes"]["ErrorReason"]["StringValue"] for q in quarantined}
    assert "json" in reasons["{not json"].lower()
    assert "account_id" in reasons[wrong_schema]
    assert "billing_period" in reasons[wrong_schema]
    assert all(q["attributes"]["ErrorType"]["StringValue"] == "MalformedMessage" for q in quarantined)


def test_without_a_dlq_setting_a_poison_message_is_redriven_by_sqs(
    make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fetcher with no DEAD_LETTER_QUEUE_URL and a poison message on the queue
    pipeline = make_pipeline()
    monkeypatch.delenv("DEAD_LETTER_QUEUE_URL")
    from invoice_archiver.handlers import environment

    environment.reset()
    dlq_url = pipeline.settings.dead_letter_queue_url
    clients.sqs().send_message(QueueUrl=pipeline.settings.invoice_queue_url, MessageBody="[]")

    # When the event source mapping keeps delivering it
    pipeline.drain(workers=1)

    # Then SQS moved it to the DLQ after maxReceiveCount receives; the main queue is empty
    assert [q["body"] for q in pipeline.queue_bodies(dlq_url)] == ["[]"]
    assert pipeline.queue_bodies(pipeline.settings.invoice_queue_url) == []


def test_not_found_and_access_denied_are_recorded_as_failed_with_the_reason_not_retried(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given an invoice the API denies access to, and one it has never heard of
    dataset = generate(seed=8, periods=((2026, 10),), invoices_per_account_period=4, access_denied_rate=0.5)
    pipeline = make_pipeline(dataset)
    denied = next(i for i in dataset.invoices if i.access_denied)
    ghost = json.loads(message_for(dataset.invoices[0].invoice_id))
    ghost["invoice_id"] = "DOES-NOT-EXIST-1"

    # When the fetcher gets both
    response = pipeline.fetch([message_for(denied.invoice_id), json.dumps(ghost)])

    # Then neither is retried: both are FAILED in the ledger with the API's reason, nothing in S3
    assert response == {"batchItemFailures": []}
    ledger = pipeline.ledger()
    assert ledger[denied.invoice_id]["status"] == "FAILED"
    assert "AccessDeniedException" in ledger[denied.invoice_id]["last_error"]
    assert ledger["DOES-NOT-EXIST-1"]["status"] == "FAILED"
    assert "the Invoicing API lists no invoice DOES-NOT-EXIST-1" in ledger["DOES-NOT-EXIST-1"]["last_error"]
    assert pipeline.object_keys() == []


def test_a_large_document_goes_up_in_parts_and_lands_byte_identical(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given an invoice whose document is 24 MiB and a 5 MiB multipart threshold
    dataset = generate(
        seed=3,
        accounts=("123456789012",),
        periods=((2026, 10),),
        invoices_per_account_period=1,
        document_size=24 * 1024 * 1024,
        supplemental=(0, 0),
    )
    pipeline = make_pipeline(dataset, env={"MULTIPART_THRESHOLD_BYTES": str(5 * 1024 * 1024)})

    # When it is archived
    report = pipeline.run()

    # Then it went up as a multipart upload (16 MiB parts) completed with If-None-Match, intact
    assert report.archived == 1
    requests = pipeline.sandbox.moto.requests
    assert requests.count(service="s3", operation="CreateMultipartUpload") == 1
    assert requests.count(service="s3", operation="UploadPart") == 2
    assert requests.count(service="s3", operation="CompleteMultipartUpload") == 1
    assert_archived(pipeline, dataset.invoices)


def test_awkward_invoice_ids_stay_inside_their_folder(make_pipeline: Callable[..., Pipeline]) -> None:
    # Given invoice ids with '/', '..', spaces, unicode, '%' and '?'
    dataset = generate(seed=4, periods=((2026, 10),), invoices_per_account_period=10, awkward_ids=True)
    awkward = [i for i in dataset.invoices if not i.invoice_id.isalnum()]
    assert awkward
    pipeline = make_pipeline(dataset)

    # When they are archived
    report = pipeline.run()

    # Then each is archived under exactly one folder of its own: no '..' segment, no extra depth
    assert report.archived == dataset.invoice_count
    assert_archived(pipeline, dataset.invoices)
    for key in pipeline.object_keys():
        segments = key.split("/")
        assert len(segments) == 5, key
        assert ".." not in segments
        assert "." not in segments


def assert_no_secrets(pipeline: Pipeline) -> None:
    emulator = pipeline.sandbox.emulator
    secrets = [*emulator.issued_signatures, *emulator.issued_urls]
    assert secrets, "the emulator issued no URL: this check would prove nothing"
    places = {
        "logs": pipeline.log_text(),
        "ledger": json.dumps(list(pipeline.ledger().values()), default=str),
        "dlq": json.dumps(pipeline.queue_bodies(pipeline.settings.dead_letter_queue_url)),
    }
    for where, text in places.items():
        assert "X-Amz-Signature=" not in text, where
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{len(leaked)} pre-signed URL(s) or signatures in the {where}"
