"""Client-side rate control for the Invoicing API, shared by every thread that uses one client.

One `Pacer` per operation spaces the calls of the whole process (every worker of the local runner,
every record thread of a fetcher batch) at most `1 / rate` seconds apart, so a rate limit of R calls
per second is used without waiting for the server to say no. The rate adapts, additive-increase /
multiplicative-decrease (AIMD): a ThrottlingException (other processes share the account's limit)
multiplies it by `DECREASE` at most once per `COOLDOWN_SECONDS`, and each second of successes adds
`INCREASE_SHARE` of the ceiling back, up to the ceiling. Without a ceiling the pacer lets calls
through unpaced until the first throttle, then paces at the rate it measured just before it.

`attach(client, calls_per_second)` hooks a client's botocore events: `before-send` waits for a
slot (every HTTP attempt, retries included) and `response-received` feeds the outcome back.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
DECREASE = 0.85
INCREASE_SHARE = 0.1  # of the ceiling, per second without a throttle
UNBOUNDED_INCREASE = 1.0  # calls/s per second, when there is no ceiling
COOLDOWN_SECONDS = 1.0  # one decrease per window: a burst of throttled calls is one signal, not many
MIN_RATE = 0.2
# Pace a little under the ceiling: calls spaced exactly 1/R apart reach the server with network
# jitter, and a server that counts R per sliding second then throttles the one that arrives early.
HEADROOM = 0.05


class Pacer:
    """Spaces calls at `rate` per second, at most `ceiling` less `HEADROOM`; a `ceiling` of None (or 0)
    means unpaced until a throttle."""

    def __init__(
        self,
        ceiling: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ceiling = ceiling * (1.0 - HEADROOM) if ceiling else None
        self.rate: float | None = self.ceiling
        self.throttles = 0
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._last_decrease = float("-inf")
        self._last_increase = clock()
        self._recent: deque[float] = deque()  # send times of the last second, to measure the rate

    def acquire(self) -> float:
        """Wait for this call's slot; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = now if self.rate is None else max(now, self._next_slot)
            if self.rate is not None:
                self._next_slot = slot + 1.0 / self.rate
            self._recent.append(slot)
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def throttled(self) -> None:
        with self._lock:
            self.throttles += 1
            now = self._clock()
            if now - self._last_decrease < COOLDOWN_SECONDS:
                return
            self._last_decrease = self._last_increase = now
            current = self.rate if self.rate is not None else float(max(1, len(self._recent)))
            self.rate = max(MIN_RATE, current * DECREASE)

    def succeeded(self) -> None:
        with self._lock:
            now = self._clock()
            elapsed, self._last_increase = now - self._last_increase, now
            if self.rate is None:
                return
            step = self.ceiling * INCREASE_SHARE if self.ceiling else UNBOUNDED_INCREASE
            raised = self.rate + step * elapsed
            self.rate = min(self.ceiling, raised) if self.ceiling else raised


class RateControl:
    """The pacers of one client, one per operation (the API limits each operation on its own)."""

    def __init__(self, calls_per_second: float | None = None) -> None:
        self.calls_per_second = calls_per_second or None
        self._pacers: dict[str, Pacer] = {}
        self._lock = threading.Lock()

    def pacer(self, operation: str) -> Pacer:
        with self._lock:
            if operation not in self._pacers:
                self._pacers[operation] = Pacer(self.calls_per_second)
            return self._pacers[operation]

    def before_send(self, event_name: str = "", **_: Any) -> None:
        self.pacer(_operation(event_name)).acquire()

    def response_received(
        self,
        event_name: str = "",
        response_dict: dict[str, Any] | None = None,
        parsed_response: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        if response_dict is None:  # a connection error: says nothing about the rate
            return
        pacer = self.pacer(_operation(event_name))
        code = str(((parsed_response or {}).get("Error") or {}).get("Code", ""))
        status = int(response_dict.get("status_code") or 0)
        if status == 429 or code in THROTTLING_CODES:
            pacer.throttled()
        elif status < 400:
            pacer.succeeded()


def attach(client: Any, calls_per_second: float | None = None) -> RateControl:
    """Pace every call `client` makes; `calls_per_second` is this process's ceiling per operation."""
    control = RateControl(calls_per_second)
    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()
    events.register(f"before-send.{service}", control.before_send, unique_id="invoice-archiver-pace")
    events.register(
        f"response-received.{service}", control.response_received, unique_id="invoice-archiver-pace-result"
    )
    return control


def _operation(event_name: str) -> str:
    """'before-send.invoicing.GetInvoicePDF' -> 'GetInvoicePDF'."""
    return event_name.rsplit(".", 1)[-1]
