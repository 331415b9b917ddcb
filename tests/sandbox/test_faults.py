"""Every fault knob shows its effect through boto3 or plain HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import urllib3
from sandbox_testkit import by_period, invoicing

from invoice_archiver.sandbox.faults import FaultInjector, Faults
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
    # Given half the calls are throttled; with seed 6 the first call's draw throttles, the second's does not
    box = make_sandbox(faults=Faults(seed=6, throttle_rate=0.5))
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


MIXED = Faults(
    seed=99,
    throttle_rate=0.2,
    error_rate=0.05,
    expired_url_rate=0.15,
    drop_connection_rate=0.1,
    truncate_rate=0.1,
)


def _calls(injector: FaultInjector, stream: str) -> object:
    if stream == "url":
        return injector.url_expired()
    if stream == "download":
        return injector.download_fault()
    return injector.api_fault(stream)


def test_each_streams_faults_do_not_depend_on_how_the_streams_interleave() -> None:
    # Given the same faults applied to 40 calls of each of four streams, once stream after stream ...
    streams = ["GetInvoicePDF", "ListInvoiceSummaries", "url", "download"]
    one_by_one = FaultInjector(MIXED)
    apart = {stream: [_calls(one_by_one, stream) for _ in range(40)] for stream in streams}

    # When the same calls arrive interleaved, from four threads at once
    together = FaultInjector(MIXED)
    interleaved: dict[str, list[object]] = {stream: [] for stream in streams}
    start = threading.Barrier(len(streams))

    def run(stream: str) -> None:
        start.wait()
        for _ in range(40):
            interleaved[stream].append(_calls(together, stream))

    threads = [threading.Thread(target=run, args=(stream,)) for stream in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then call N of each stream met the same fault either way: a draw per call index, not per arrival
    assert interleaved == apart
    # ... and the schedule really injects faults of every kind in these 40 calls
    outcomes = {outcome for calls in apart.values() for outcome in calls}
    assert {"throttle", "error", True, "drop", "truncate"} <= outcomes


def test_every_nth_call_fails_for_certain(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given every third GetInvoicePDF answers 500, with no random faults at all
    box = make_sandbox(faults=Faults(every={"error": 3}))
    client = invoicing()
    invoice_id = box.dataset.invoices[0].invoice_id

    # When six calls are made without retries
    outcomes = []
    for _ in range(6):
        try:
            client.get_invoice_pdf(InvoiceId=invoice_id)
            outcomes.append("ok")
        except client.exceptions.InternalServerException:
            outcomes.append("5xx")

    # Then calls 3 and 6 failed, the others succeeded; other operations count their own calls
    assert outcomes == ["ok", "ok", "5xx", "ok", "ok", "5xx"]
    assert client.list_invoice_summaries(**by_period(2026, 9))["InvoiceSummaries"]


def test_setting_new_faults_starts_every_stream_again() -> None:
    injector = FaultInjector(Faults(every={"truncate": 2}))
    assert [injector.download_fault() for _ in range(3)] == [None, "truncate", None]
    injector.set(Faults(every={"truncate": 2}))
    assert [injector.download_fault() for _ in range(2)] == [None, "truncate"]


@pytest.mark.parametrize(
    ("every", "message"),
    [({"error": 0}, "at least 1"), ({"slow": 2}, "unknown fault 'slow'")],
)
def test_a_bad_schedule_is_refused(every: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults(every=every)  # type: ignore[arg-type]
