"""The scheduled reconciliation through the real reconciler handler, on the sandbox: an archive the real
lister and fetcher filled, cost data the sandbox wrote into moto's S3 (real Parquet), the result written
create-only under reconciliation/YYYY-MM/ and the missing invoice counted in its metric."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from invoice_archiver.dal import clients
from invoice_archiver.handlers import environment, reconciler
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.sandbox import cost_files
from invoice_archiver.sandbox.cost_data import Discrepancies
from invoice_archiver.sandbox.dataset import generate
from tests.integration.conftest import BUCKET, Pipeline

DATASET = generate(seed=41, periods=((2026, 2),), invoices_per_account_period=4, supplemental=(0, 1))
EXPORTS = "cost-exports"
# EventBridge's scheduled event on 10 March: the reconciler takes the previous month, February.
SCHEDULED = {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-03-10T06:00:00Z"}


@pytest.fixture
def archived(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    pipeline = make_pipeline(DATASET)
    pipeline.run()
    pipeline.drain()
    assert {item["status"] for item in pipeline.ledger().values()} == {"ARCHIVED"}
    return pipeline


def configure(monkeypatch: pytest.MonkeyPatch, location: str) -> None:
    monkeypatch.setenv("COST_DATA_EXPORT", location)
    environment.reset()


def invoke(
    capsys: pytest.CaptureFixture[str], event: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float]]:
    capsys.readouterr()
    response: dict[str, Any] = reconciler.handler(event, LocalContext("reconciler-test"))
    emitted: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if '"_aws"' in line:
            for name, values in json.loads(line).items():
                if isinstance(values, list) and all(isinstance(v, int | float) for v in values):
                    emitted[name] = emitted.get(name, 0.0) + sum(values)
    return response, emitted


def results(prefix: str = "reconciliation/2026-02/") -> list[str]:
    listed = clients.s3().list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(obj["Key"] for obj in listed)


def test_a_missing_invoice_is_counted_and_each_run_writes_a_new_result(
    archived: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given February's CUR 2.0 export in S3 naming one invoice the Invoicing API never listed
    written = cost_files.write(
        DATASET, f"s3://{EXPORTS}/exports", formats=[cost_files.ExportFormat.CUR2], s3=clients.s3(),
        discrepancies=Discrepancies(missing_invoice=True),
    )  # fmt: skip
    missing = written.injected.missing_invoice["2026-02"]
    configure(monkeypatch, f"s3://{EXPORTS}/exports/")

    # When the scheduled reconciliation runs
    response, emitted = invoke(capsys, SCHEDULED)

    # Then it reconciled February, found the invoice missing, and counted it in its metric
    assert response["billing_period"] == "2026-02"
    assert response["missing_from_archive"] == 1
    assert emitted["InvoicesMissingFromArchive"] == 1
    assert emitted["InvoicesReconciled"] == len(DATASET.invoices)
    # And its result is in the archive bucket, naming the invoice and the kind
    [key] = results()
    assert key == response["result_key"]
    document = json.loads(clients.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read())
    [found] = [r for r in document["invoices"] if r["kind"] != "matched"]
    assert (found["invoice_id"], found["kind"], found["problem"]) == (missing, "not_archived", True)
    assert "not in the ledger" in found["detail"]

    # When it runs again (a retry, a manual rerun)
    second, _ = invoke(capsys, SCHEDULED)

    # Then a second result is written beside the first, which is untouched (one version each)
    assert results() == sorted([key, second["result_key"]])
    versions = clients.s3().list_object_versions(Bucket=BUCKET, Prefix="reconciliation/")["Versions"]
    assert sorted(v["Key"] for v in versions) == results()


def test_cost_data_that_matches_reconciles_with_no_missing_invoice(
    archived: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given FOCUS 1.2 cost data that matches every archived invoice, under a prefix above the export
    cost_files.write(DATASET, f"s3://{EXPORTS}/all", formats=[cost_files.ExportFormat.FOCUS], s3=clients.s3())
    configure(monkeypatch, f"s3://{EXPORTS}/all")

    # When a reconciliation of February is asked for explicitly
    response, emitted = invoke(capsys, {"billing_period": "2026-02"})

    # Then everything reconciled, and the metric says so (zero, not absent)
    assert response["reconciled"] is True
    assert emitted["InvoicesMissingFromArchive"] == 0
    assert emitted["ReconciliationProblems"] == 0


def test_the_result_cannot_be_overwritten(archived: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a result already stored for a moment
    from datetime import UTC, datetime

    from invoice_archiver.dal import reconciliation_results
    from invoice_archiver.models.period import BillingPeriod

    moment = datetime(2026, 3, 10, 6, tzinfo=UTC)
    first = reconciliation_results.put_result(clients.s3(), BUCKET, BillingPeriod(2026, 2), {"n": 1}, moment)

    # When another result is stored for the very same moment
    second = reconciliation_results.put_result(clients.s3(), BUCKET, BillingPeriod(2026, 2), {"n": 2}, moment)

    # Then it gets its own key, and the first still holds what it held
    assert second != first
    assert second == first.replace("-result.json", "-2-result.json")
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=first)["Body"].read()
    assert json.loads(body) == {"n": 1}
