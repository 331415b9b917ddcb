"""Latency knobs: the sandbox can answer as slowly as the cloud, for benchmarks (lower bounds only)."""

from __future__ import annotations

import time
from collections.abc import Callable

import boto3
import pytest
import urllib3

from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.faults import CLOUD, Latency
from invoice_archiver.sandbox.runner import Sandbox

DATASET = generate(
    seed=3,
    accounts=("123456789012",),
    periods=((2026, 10),),
    invoices_per_account_period=1,
    document_size=200_000,
    supplemental=(0, 0),
)


def _elapsed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_each_knob_delays_its_own_requests(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given a sandbox with 200 ms per Invoicing call, 100 ms + 1 MB/s per download, 150 ms per S3 request
    latency = Latency(invoicing_ms=200, document_ms=100, document_mb_per_s=1.0, services_ms={"s3": 150})
    box = make_sandbox(DATASET, latency=latency)
    invoicing = boto3.client("invoicing", region_name="us-east-1")
    s3 = boto3.client("s3")
    invoice_id = DATASET.invoices[0].invoice_id

    # When each is called
    pdf_seconds = _elapsed(lambda: invoicing.get_invoice_pdf(InvoiceId=invoice_id))
    url = invoicing.get_invoice_pdf(InvoiceId=invoice_id)["InvoicePDF"]["DocumentUrl"]
    download_seconds = _elapsed(lambda: urllib3.PoolManager().request("GET", url))
    s3_seconds = _elapsed(lambda: s3.list_buckets())
    box.emulator.set_latency(None)  # type: ignore[union-attr]
    fast_seconds = _elapsed(lambda: invoicing.get_invoice_pdf(InvoiceId=invoice_id))

    # Then each took at least its latency (and the 200 KB body at 1 MB/s at least 0.2 s more)
    assert pdf_seconds >= 0.2
    assert download_seconds >= 0.1 + 0.2
    assert s3_seconds >= 0.15
    assert fast_seconds < pdf_seconds


def test_the_cloud_profile_is_the_documented_one() -> None:
    assert (CLOUD.invoicing_ms, CLOUD.document_ms, CLOUD.document_mb_per_s) == (150, 50, 20)
    assert {k: CLOUD.services_ms[k] for k in ("s3", "dynamodb", "sqs")} == {
        "s3": 25,
        "dynamodb": 8,
        "sqs": 10,
    }
    assert Latency.parse_services(CLOUD.as_option()) == dict(CLOUD.services_ms)


def test_a_negative_latency_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Latency(invoicing_ms=-1)
