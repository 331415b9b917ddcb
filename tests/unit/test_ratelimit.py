"""The Invoicing pacer: calls spaced at the ceiling, slower after a throttle, back up with successes."""

from __future__ import annotations

import threading

import boto3
import pytest

from invoice_archiver.dal import ratelimit
from invoice_archiver.dal.ratelimit import Pacer, RateControl


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_calls_are_spaced_at_the_ceiling() -> None:
    # Given a pacer at 5 calls per second
    clock = FakeClock()
    pacer = Pacer(5.0, clock=clock, sleep=clock.sleep)

    # When ten calls ask for a slot back to back
    for _ in range(10):
        pacer.acquire()

    # Then the first goes at once and each next one waits 1/5 s (plus the headroom): ten take ~1.8 s
    spacing = 1 / (5.0 * (1 - ratelimit.HEADROOM))
    assert clock.slept[0] == pytest.approx(spacing)
    assert clock.now - 100.0 == pytest.approx(9 * spacing)


def test_a_throttle_slows_down_once_per_window_and_successes_bring_the_rate_back() -> None:
    # Given a pacer at its ceiling of 10 calls per second (less the headroom)
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock, sleep=clock.sleep)
    top = 10.0 * (1 - ratelimit.HEADROOM)

    # When three calls are throttled in the same second
    for _ in range(3):
        pacer.throttled()

    # Then the rate drops once, multiplicatively, not three times
    assert pacer.rate == pytest.approx(top * ratelimit.DECREASE)
    assert pacer.throttles == 3

    # When successes follow for a while
    for _ in range(40):
        clock.now += 0.25
        pacer.succeeded()

    # Then the rate climbs back additively and stops at the ceiling
    assert pacer.rate == pytest.approx(top)


def test_without_a_ceiling_calls_go_unpaced_until_the_first_throttle() -> None:
    # Given a pacer without a ceiling that has let 8 calls through in the last second
    clock = FakeClock()
    pacer = Pacer(None, clock=clock, sleep=clock.sleep)
    for _ in range(8):
        pacer.acquire()
        clock.now += 0.1
    assert clock.slept == []

    # When the API throttles
    pacer.throttled()

    # Then it paces at a share of the rate it measured
    assert pacer.rate == pytest.approx(8 * ratelimit.DECREASE)
    pacer.acquire()
    pacer.acquire()
    assert pacer.rate is not None
    assert clock.slept
    assert clock.slept[-1] == pytest.approx(1 / pacer.rate)


def test_the_rate_never_falls_below_the_floor() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    for _ in range(60):
        clock.now += ratelimit.COOLDOWN_SECONDS
        pacer.throttled()
    assert pacer.rate == pytest.approx(ratelimit.MIN_RATE)


def test_threads_share_one_pacer_and_never_take_the_same_slot() -> None:
    # Given one pacer used by eight threads at once (time frozen, sleeps recorded per thread)
    clock = FakeClock()
    waits: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    pacer = Pacer(4.0, clock=clock, sleep=sleep)

    # When each thread takes five slots
    def work() -> None:
        for _ in range(5):
            pacer.acquire()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then the 40 slots are 1/4 s (plus the headroom) apart: every wait is distinct
    spacing = 1 / (4.0 * (1 - ratelimit.HEADROOM))
    assert sorted(round(w, 6) for w in waits) == [round(n * spacing, 6) for n in range(1, 40)]


def test_a_client_is_paced_per_operation_and_hears_its_throttles() -> None:
    # Given an Invoicing client with rate control attached
    client = boto3.client(
        "invoicing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    control = ratelimit.attach(client, 50.0)
    events = client.meta.events

    # When its event system reports a throttled GetInvoicePDF attempt and a successful listing
    events.emit(
        "response-received.invoicing.GetInvoicePDF",
        response_dict={"status_code": 400},
        parsed_response={"Error": {"Code": "ThrottlingException"}},
    )
    events.emit("response-received.invoicing.ListInvoiceSummaries", response_dict={"status_code": 200})
    events.emit("before-send.invoicing.ListInvoiceSummaries", request=None)

    # Then only GetInvoicePDF's pace went down
    assert isinstance(control, RateControl)
    assert control.pacer("GetInvoicePDF").throttles == 1
    top = 50.0 * (1 - ratelimit.HEADROOM)
    assert control.pacer("GetInvoicePDF").rate == pytest.approx(top * ratelimit.DECREASE)
    assert control.pacer("ListInvoiceSummaries").rate == pytest.approx(top)
