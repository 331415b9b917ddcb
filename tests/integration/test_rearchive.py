"""A re-archive (Reason.REARCHIVE, asked of the lister with `"rearchive": true`): the fetcher's claim takes
an ARCHIVED invoice in its one conditional write, fetches every document again create-only, and a second
delivery of the same request is a duplicate, skipped; a re-check holding the invoice makes it wait."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from invoice_archiver.dal import clients
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.sandbox.dataset import generate
from tests.integration.conftest import Pipeline, message_for

DATASET = generate(
    seed=21,
    accounts=("123456789012",),
    periods=((2026, 10),),
    invoices_per_account_period=1,
    supplemental=(2, 2),
)


def rearchive(invoice_id: str, listed_at: datetime) -> str:
    """The lister's message for a re-archive of the invoice, listed at `listed_at`."""
    message = InvoiceMessage.model_validate_json(message_for(invoice_id))
    return message.model_copy(update={"reason": "rearchive", "listed_at": listed_at}).model_dump_json()


def pdf_calls(pipeline: Pipeline) -> int:
    assert pipeline.sandbox.emulator is not None
    calls: dict[str, int] = pipeline.sandbox.emulator.stats.snapshot()["calls"]
    return calls.get("GetInvoicePDF", 0)


def test_a_rearchive_restores_a_deleted_object_once_and_a_duplicate_is_skipped(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given an archived invoice, one of whose documents was deleted behind the archiver's back
    pipeline = make_pipeline(DATASET)
    [invoice] = DATASET.invoices
    pipeline.run()
    before = pipeline.ledger()[invoice.invoice_id]
    document = next(d for d in before["documents"] if d["document_type"] != "INVOICE")
    s3 = clients.s3()
    bucket = pipeline.settings.archive_bucket
    original = s3.get_object(Bucket=bucket, Key=document["key"])["Body"].read()
    s3.delete_object(Bucket=bucket, Key=document["key"])
    body = rearchive(invoice.invoice_id, datetime.now(UTC))

    # When the re-archive is delivered
    calls = pdf_calls(pipeline)
    assert pipeline.fetch([body]) == {"batchItemFailures": []}

    # Then the ARCHIVED invoice was taken and archived again: the deleted object is back, byte for byte
    after = pipeline.ledger()[invoice.invoice_id]
    assert after["status"] == "ARCHIVED"
    assert after["archived_at"] > before["archived_at"]
    assert s3.get_object(Bucket=bucket, Key=document["key"])["Body"].read() == original
    assert pdf_calls(pipeline) == calls + 1

    # When the same message is delivered again (SQS delivers at least once)
    assert pipeline.fetch([body]) == {"batchItemFailures": []}

    # Then it is a duplicate: archived since it was asked, skipped without a call
    assert pipeline.ledger()[invoice.invoice_id]["archived_at"] == after["archived_at"]
    assert pdf_calls(pipeline) == calls + 1


def test_a_rearchive_waits_while_a_re_check_holds_the_invoice(make_pipeline: Callable[..., Pipeline]) -> None:
    # Given an archived invoice a re-check holds (a live lease on the ARCHIVED item)
    pipeline = make_pipeline(DATASET)
    [invoice] = DATASET.invoices
    pipeline.run()
    item = pipeline.ledger()[invoice.invoice_id]
    clients.dynamodb().update_item(
        TableName=pipeline.settings.ledger_table,
        Key={"pk": {"S": str(item["pk"])}, "sk": {"S": str(item["sk"])}},
        UpdateExpression="SET lease_owner = :owner, lease_expires_at = :expires",
        ExpressionAttributeValues={
            ":owner": {"S": "a-re-check"},
            ":expires": {"N": str(int((datetime.now(UTC) + timedelta(minutes=15)).timestamp()))},
        },
    )

    # When a re-archive is delivered
    result = pipeline.fetch([rearchive(invoice.invoice_id, datetime.now(UTC))])

    # Then it is not taken for a duplicate and dropped: it fails for now, to be delivered again
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert pipeline.ledger()[invoice.invoice_id]["archived_at"] == item["archived_at"]
