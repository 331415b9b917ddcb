"""Every fault knob shows its effect through boto3 or plain HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import urllib3
from sandbox_testkit import by_period, invoicing

from invoice_archiver.sandbox.faults import Faults
from invoice_archiver.sandbox.runner import Sandbox


def test_throttle_rate_raises_throttling_exception(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given every API call is throttled
    box = make_sandbox(faults=Faults(throttle_rate=1.0))
    client = invoicing()
    # When a call is made without retries / Then ThrottlingException (HTTP 429)
    with pytest.raises(client.exceptions.ThrottlingException) as caught:
        client.list_invoice_summaries(**by_period(2026, 9))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert box.emulator is not None
    assert box.emulator.stats.throttled == 1


def test_standard_retry_mode_retries_throttling(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given half the calls are throttled; with seed 1 the first draw throttles and the second does not
    box = make_sandbox(faults=Faults(seed=1, throttle_rate=0.5))
    client = invoicing(retries={"mode": "standard", "total_max_attempts": 3})
    # When one call is made with botocore's standard retry mode
    response = client.list_invoice_summaries(**by_period(2026, 9))
    # Then botocore retried the throttled attempt once and succeeded
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert box.emulator is not None
    assert box.emulator.stats.throttled == 1
    assert box.emulator.stats.calls["ListInvoiceSummaries"] == 2


def test_error_rate_raises_internal_server_exception_with_retry_after(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(faults=Faults(error_rate=1.0, retry_after_seconds=7))
    client = invoicing()
    with pytest.raises(client.exceptions.InternalServerException) as caught:
        client.get_invoice_pdf(InvoiceId=box.dataset.invoices[0].invoice_id)
    assert caught.value.response["retryAfterSeconds"] == 7
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert box.emulator is not None
    assert box.emulator.stats.errors_5xx == 1


def test_tps_limit_throttles_calls_above_the_limit(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given GetInvoicePDF is limited to 3 calls per second
    box = make_sandbox(faults=Faults(tps_limit={"GetInvoicePDF": 3}))
    client = invoicing()
    invoice_id = box.dataset.invoices[0].invoice_id
    # When 8 calls arrive at once (well within a second)
    outcomes = []
    for _ in range(8):
        try:
            client.get_invoice_pdf(InvoiceId=invoice_id)
            outcomes.append("ok")
        except client.exceptions.ThrottlingException:
            outcomes.append("throttled")
    # Then the first 3 pass, the rest are throttled and counted; other operations are not limited
    assert outcomes[:3] == ["ok"] * 3
    assert box.emulator is not None
    assert box.emulator.stats.tps_throttled == outcomes.count("throttled") >= 4
    assert client.list_invoice_summaries(**by_period(2026, 9))["InvoiceSummaries"]


def test_expired_url_rate_hands_out_expired_urls(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given every issued URL is already expired
    box = make_sandbox(faults=Faults(expired_url_rate=1.0))
    pdf = invoicing().get_invoice_pdf(InvoiceId=box.dataset.invoices[0].invoice_id)["InvoicePDF"]
    # When it is downloaded / Then 403 "Request has expired"
    response = urllib3.request("GET", pdf["DocumentUrl"], retries=False)
    assert response.status == 403
    assert b"Request has expired" in response.data
    assert box.emulator is not None
    assert box.emulator.stats.expired_urls == 1


@pytest.mark.parametrize(
    ("knob", "counter"), [("drop_connection_rate", "dropped"), ("truncate_rate", "truncated")]
)
def test_broken_downloads_fail_the_client(
    make_sandbox: Callable[..., Sandbox], knob: str, counter: str
) -> None:
    # Given every download is dropped mid-body, or truncated
    box = make_sandbox(faults=Faults(**{knob: 1.0}))
    url = invoicing().get_invoice_pdf(InvoiceId=box.dataset.invoices[0].invoice_id)["InvoicePDF"][
        "DocumentUrl"
    ]
    # When downloaded with urllib3 (which enforces Content-Length)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        urllib3.request("GET", url, retries=False)
    # Then the emulator counted it, and switching the fault off heals the same URL
    assert box.emulator is not None
    assert getattr(box.emulator.stats, counter) == 1
    box.emulator.set_faults(Faults())
    assert urllib3.request("GET", url, retries=False).status == 200


def test_reset_stats(sandbox: Sandbox) -> None:
    invoicing().list_invoice_summaries(**by_period(2026, 9))
    assert sandbox.emulator is not None
    assert sandbox.emulator.stats.calls["ListInvoiceSummaries"] == 1
    sandbox.emulator.reset_stats()
    assert sandbox.emulator.stats.snapshot()["calls"] == {}
