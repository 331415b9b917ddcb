"""The functions as `cdk synth` ships them, on the oldest Lambda runtime SDK, against the sandbox.

Given the synthesized code asset and the stack's own layers, loaded in Lambda's order by an interpreter
that has only boto3/botocore 1.42.97 and the Powertools layer's packages, the lister and the fetcher
archive every invoice, and S3 holds every field and every document exactly as the emulator sent them
on the wire (compared as JSON, field by field, not through any SDK).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from assembly import Assembly, resolve_environment
from conftest import Invoke

from invoice_archiver.dal import clients
from invoice_archiver.infra.constants import DEFAULT_REGION, DEFAULT_STACK_NAME, OutputKey
from invoice_archiver.local import resources
from invoice_archiver.local.event_source import to_record
from invoice_archiver.local.pipeline import scheduled_event
from invoice_archiver.logic import layout
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.sandbox.dataset import Dataset, generate
from invoice_archiver.sandbox.documents import document_sha256
from invoice_archiver.sandbox.runner import Sandbox
from tests.iam.deployment import Archive, names_from_environments
from tests.iam.replay import replay
from tests.iam.template import Deployed

ACCOUNTS = ("111122223333", "444455556666")
SCHEDULED_AT = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)  # lists 2026-07..2026-09
BUCKET, TABLE, QUEUE = "shipped-archive", "shipped-ledger", "shipped-invoices"
TIMESTAMPS = ("IssuedDate", "DueDate")
SHIPPED_BOTOCORE = "1.44.5"  # layers/sdk/requirements.lock
# A member AWS might add after the shipped SDK: no botocore models it, so it must arrive raw.
FUTURE_MEMBERS = {"FutureMember": {"Code": "X-1", "Amount": "12.50"}}

# One synth and one runtime per session: this tier runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("shipped")


def dataset() -> Dataset:
    """Every receiver role and supplemental document type, plus documents the API describes in part."""
    base = generate(
        seed=41,
        accounts=ACCOUNTS,
        periods=((2026, 8), (2026, 9)),
        invoices_per_account_period=6,
        supplemental=(2, 4),
        document_size=2048,
    )
    invoices = list(base.invoices)
    omissions = (("DocumentType",), ("DocumentId",), ("DocumentType", "DocumentId"))
    for n, omitted in enumerate(omissions):
        inv = invoices[n]
        docs = (replace(inv.supplemental[0], omitted=omitted), *inv.supplemental[1:])
        invoices[n] = replace(inv, supplemental=docs)
    for n, inv in enumerate(invoices):
        if inv.summary.get("ReceiverRole") == "BUYER":
            invoices[n] = replace(inv, summary={**inv.summary, **FUTURE_MEMBERS})
            break
    return Dataset(invoices)


@pytest.fixture
def deployed(make_sandbox: Callable[..., Sandbox]) -> tuple[Sandbox, dict[str, str]]:
    """A sandbox with the stack's bucket, table and queues; the values that stand in for its references."""
    box = make_sandbox(dataset=dataset())
    clients.reset()
    local = resources.ensure_all(BUCKET, TABLE, QUEUE)
    return box, {
        "AWS::S3::Bucket": local.bucket,
        "AWS::DynamoDB::Table": local.table,
        "PipelineInvoiceQueue": local.queue_url,
        "PipelineDeadLetterQueue": local.dead_letter_queue_url,
        "PipelineListingQueue": local.listing_queue_url,
        "AWS::AccountId": ",".join(ACCOUNTS),
    }


@pytest.mark.parametrize("receiver_roles", ["BUYER", ""], ids=["RECEIVER_ROLES=BUYER", "no-roles"])
def test_the_shipped_functions_archive_every_field_and_document_the_api_sent(
    receiver_roles: str,
    shipped: Assembly,
    cdk_out: Path,
    invoke: Invoke,
    runtime_floor: Path,
    deployed: tuple[Sandbox, dict[str, str]],
) -> None:
    box, stand_ins = deployed
    assert box.emulator is not None
    wire = box.emulator.record_wire()
    lister, fetcher = shipped.functions["lister"], shipped.functions["fetcher"]

    # When the shipped lister runs on its schedule (with the receiver roles a deployment would set)
    lister_env = {**resolve_environment(shipped, lister, stand_ins), "RECEIVER_ROLES": receiver_roles}
    listed = invoke(lister, lister_env, [scheduled_event(SCHEDULED_AT)])
    assert "init_error" not in listed, listed.get("init_error")
    # Then it ran the shipped code on the SDK it ships (1.44.5), not the runtime's (1.42.97)
    assert listed["loaded"]["botocore_version"] == SHIPPED_BOTOCORE
    assert not Path(listed["loaded"]["botocore_path"]).is_relative_to(runtime_floor.parents[1].resolve())
    assert listed["loaded"]["handler_path"].startswith(str(lister.code))
    [result] = listed["results"]
    assert "error" not in result, result

    # And the shipped fetcher archives every message the lister queued, batch by batch
    fetcher_env = resolve_environment(shipped, fetcher, stand_ins)
    fetched = invoke(fetcher, fetcher_env, _drain(stand_ins))
    assert "init_error" not in fetched, fetched.get("init_error")
    assert all(r.get("response") == {"batchItemFailures": []} for r in fetched["results"]), fetched["results"]

    # Then S3 holds what the emulator sent on the wire: the lister's listing by account, and the
    # fetcher's own confirmation of each invoice (ListInvoiceSummaries by INVOICE_ID), which is what it
    # archived (a message carries no summary)
    def listed_by(selector: str) -> list[dict[str, Any]]:
        return [
            summary
            for op, request, resp in wire
            if op == "ListInvoiceSummaries" and request["Selector"]["ResourceType"] == selector
            for summary in resp["InvoiceSummaries"]
        ]

    summaries, confirmed = listed_by("ACCOUNT_ID"), listed_by("INVOICE_ID")
    assert sorted(s["InvoiceId"] for s in confirmed) == sorted(s["InvoiceId"] for s in summaries)
    assert {s["InvoiceId"]: s for s in confirmed} == {s["InvoiceId"]: s for s in summaries}
    pdfs = {
        resp["InvoicePDF"]["InvoiceId"]: resp["InvoicePDF"] for op, _, resp in wire if op == "GetInvoicePDF"
    }
    expected = [
        inv
        for inv in box.dataset.invoices
        if not receiver_roles or inv.summary.get("ReceiverRole") == receiver_roles
    ]
    assert sorted(s["InvoiceId"] for s in summaries) == sorted(inv.invoice_id for inv in expected)
    assert result["response"]["invoices_listed"] == len(summaries) > 0
    assert set(pdfs) == {s["InvoiceId"] for s in summaries}
    seen: set[tuple[str, ...]] = set()
    for sent in summaries:
        archived = _summary_json(sent)
        # every field of the summary, exactly (timestamps as the ISO form of the wire's epoch seconds)
        assert archived["invoice_summary"] == _as_archived(sent), sent["InvoiceId"]
        seen |= _assert_documents(archived, pdfs[sent["InvoiceId"]], box.dataset)

    # And every AWS call the shipped functions made is one the template `cdk synth` wrote allows (the
    # IAM replay, tests/iam: identity, bucket and queue policies, Denies and conditions included)
    _assert_allowed(shipped, cdk_out, {lister.name: lister_env, fetcher.name: fetcher_env}, listed, fetched)

    # And the comparison covered every field, document type and omission the API can send
    fields = {key for s in summaries for key in s}
    assert {
        "ReceiverRole",
        "BillType",
        "InvoiceFrequency",
        "BillSourceAccounts",
        "TaxAuthorityStatus",
        *FUTURE_MEMBERS,
    } <= fields
    assert {("GOVERNMENT_INVOICE",), ("TAX_E_INVOICE",), ("PAYMENT_RECEIPT",), ("SUPPLEMENT",)} <= seen
    if not receiver_roles:
        assert {
            ("omitted", "DocumentType"),
            ("omitted", "DocumentId"),
            ("omitted", "DocumentType", "DocumentId"),
        } <= seen


def _assert_allowed(
    shipped: Assembly,
    cdk_out: Path,
    environments: dict[str, dict[str, str]],
    *outcomes: dict[str, Any],
) -> None:
    """Replay the functions' recorded requests against the synthesized policies (tests/iam)."""
    calls = [call for outcome in outcomes for call in outcome["calls"]]
    assert {call["function"] for call in calls} == {"lister", "fetcher"}
    assert {"ListInvoiceSummaries", "SendMessageBatch", "GetInvoicePDF", "PutObject", "UpdateItem"} <= {
        call["operation"] for call in calls
    }
    by_logical_id = {
        shipped.template["Outputs"][output]["Value"]["Ref"]: environments[name]
        for name, output in (("lister", OutputKey.LISTER_FUNCTION), ("fetcher", OutputKey.FETCHER_FUNCTION))
    }
    [payer] = (cdk_out / "assembly-PayerRole").glob("*.template.json")
    deployed = Deployed(
        shipped.template,
        account="123456789012",
        region=DEFAULT_REGION,
        stack_name=DEFAULT_STACK_NAME,
        names=names_from_environments(shipped.template, by_logical_id),
        label="the archive stack (cdk.out)",
    )
    report = replay(calls, Archive(deployed, json.loads(payer.read_text())))
    assert not report.findings, report.failures()


def _drain(stand_ins: dict[str, str]) -> list[dict[str, Any]]:
    """Every queued message as SQS event batches of ten, as Lambda's event source mapping delivers them."""
    sqs, url = clients.sqs(), stand_ins["PipelineInvoiceQueue"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages"
    ):
        events.append({"Records": [to_record(m, arn, "us-east-1") for m in messages]})
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )
    assert events, "the lister queued nothing"
    return events


def _summary_json(sent: dict[str, Any]) -> dict[str, Any]:
    period = BillingPeriod.from_api(sent["BillingPeriod"])
    folder = layout.invoice_prefix("invoices", sent["AccountId"], period, sent["InvoiceId"])
    body = clients.s3().get_object(Bucket=BUCKET, Key=layout.summary_key(folder))["Body"].read()
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def _as_archived(sent: dict[str, Any]) -> dict[str, Any]:
    """The summary as summary.json must hold it: timestamps in ISO form, unmodeled members kept raw."""
    archived = {
        key: datetime.fromtimestamp(value, UTC).isoformat() if key in TIMESTAMPS else value
        for key, value in sent.items()
        if key not in FUTURE_MEMBERS
    }
    if FUTURE_MEMBERS.keys() & sent.keys():
        archived["_unmodeled"] = {key: sent[key] for key in FUTURE_MEMBERS}
    return archived


def _assert_documents(archived: dict[str, Any], pdf: dict[str, Any], data: Dataset) -> set[tuple[str, ...]]:
    """The invoice document and each supplemental document under the type and id the API sent;
    returns the document types and omissions it saw."""
    seen: set[tuple[str, ...]] = set()
    invoice = data.invoice(pdf["InvoiceId"])
    records = archived["documents"]
    assert len(records) == 1 + len(pdf.get("SupplementalDocuments", []))
    assert records[0]["document_type"] == "INVOICE"
    for sent, doc, record in zip(
        pdf.get("SupplementalDocuments", []), invoice.supplemental, records[1:], strict=True
    ):
        assert record["document_type"] == sent.get("DocumentType")
        assert record["document_id"] == sent.get("DocumentId")
        assert record["omitted_by_api"] == [n for n in ("DocumentType", "DocumentId") if n not in sent]
        body = clients.s3().get_object(Bucket=BUCKET, Key=record["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == record["sha256"] == document_sha256(doc)
        seen.add(("omitted", *record["omitted_by_api"]) if record["omitted_by_api"] else (doc.document_type,))
    return seen
