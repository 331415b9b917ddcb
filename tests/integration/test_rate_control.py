"""Rate control: the pipeline under the Invoicing API's per-operation limit loses no invoice."""

from __future__ import annotations

from collections.abc import Callable

from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.faults import Faults
from tests.integration.conftest import Pipeline

R = 5
DATASET = generate(
    seed=21,
    accounts=("123456789012",),
    periods=((2026, 9), (2026, 10)),
    invoices_per_account_period=20,
    receiver_roles=("BUYER",),
    document_size=1024,
    supplemental=(0, 1),
)


def test_at_the_rate_limit_every_invoice_is_archived_and_none_fails(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given an Invoicing API that throttles every operation above R calls per second, and fetchers
    # (4 concurrent invocations x 4 records each) whose process may make R calls per second
    pipeline = make_pipeline(
        DATASET,
        faults=Faults(tps_limit={"*": R}),
        env={"INVOICING_RATE_LIMIT": str(R), "FETCHER_CONCURRENCY": "4"},
    )

    # When the whole period is listed and fetched
    report = pipeline.run(workers=4)

    # Then every invoice is archived, none failed, none is left for a retry
    assert (report.listed, report.archived) == (DATASET.invoice_count, DATASET.invoice_count)
    assert (report.failed, report.unresolved, report.quarantined) == (0, 0, 0)
    # ... each invoice needed exactly one admitted GetInvoicePDF and one admitted ListInvoiceSummaries
    # (the fetcher's confirmation) beside the lister's page per period; any throttled call was retried
    emulator, moto = pipeline.sandbox.emulator, pipeline.sandbox.moto
    assert emulator is not None
    assert moto is not None
    stats = emulator.stats.snapshot()
    admitted = {op: n - stats["throttled_calls"].get(op, 0) for op, n in stats["calls"].items()}
    assert admitted["GetInvoicePDF"] == DATASET.invoice_count
    assert admitted["ListInvoiceSummaries"] == len(pipeline.periods()) + DATASET.invoice_count
    # ... and each document was written once
    assert moto.requests.count(service="s3", operation="PutObject") == (
        DATASET.document_count + DATASET.invoice_count
    )
