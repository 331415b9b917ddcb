"""Fault injection for the emulator: throttling, 5xx, per-operation TPS limits and broken downloads.

`Faults` is the immutable setting; `FaultInjector` applies it on a schedule that threads cannot reorder.
Each stream of calls (each API operation, the URLs issued, the downloads served) numbers its calls 1, 2,
3, ... in arrival order, and whether call N of a stream fails, and how, is a pure function of the seed, the
fault kind, the stream and N: a seeded draw per call index (`<kind>_rate`), or every Nth call (`every`).
So the first K calls of a stream carry the same faults whatever the thread timing; only which request
arrives as call N is up to the threads. A test can therefore demand at least one fault of each kind, and
`every` makes one certain. The TPS limit is the exception: it judges arrival times (a sliding window).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

ApiFault = Literal["throttle", "tps", "error"]
DownloadFault = Literal["drop", "truncate"]
# The scheduled kinds, each with its `<kind>_rate` field and its `every` entry.
FaultKind = Literal["throttle", "error", "expired_url", "drop_connection", "truncate"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
_DRAW_SCALE = float(2**64)


@dataclass(frozen=True)
class Faults:
    """Which calls fail, and how. ``<kind>_rate`` (0.0 to 1.0): a seeded draw per call index fails that
    share of calls; ``every`` maps a kind to N: every Nth call of each stream fails that way (either rule
    is enough). ``tps_limit`` maps operation -> calls/second; a key ``"*"`` applies to every operation
    without its own limit.
    """

    seed: int = 0
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    tps_limit: Mapping[str, int] = field(default_factory=dict)
    expired_url_rate: float = 0.0
    drop_connection_rate: float = 0.0
    truncate_rate: float = 0.0
    retry_after_seconds: int = 1
    every: Mapping[FaultKind, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in FAULT_KINDS:
            value = self.rate(kind)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{kind}_rate must be between 0 and 1, got {value}")
        for op, limit in self.tps_limit.items():
            if limit < 1:
                raise ValueError(f"tps_limit[{op!r}] must be at least 1, got {limit}")
        for kind, n in self.every.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"every: unknown fault {kind!r}; use {', '.join(FAULT_KINDS)}")
            if n < 1:
                raise ValueError(f"every[{kind!r}] must be at least 1, got {n}")

    def rate(self, kind: FaultKind) -> float:
        value: float = getattr(self, f"{kind}_rate")
        return value

    def hits(self, kind: FaultKind, stream: str, index: int) -> bool:
        """Whether call `index` (1-based) of `stream` fails with `kind`: a pure function, no state."""
        every = self.every.get(kind)
        if every and index % every == 0:
            return True
        rate = self.rate(kind)
        return bool(rate) and draw(self.seed, kind, stream, index) < rate


def draw(seed: int, kind: str, stream: str, index: int) -> float:
    """A uniform number in [0, 1) for one call: the same arguments always give the same number."""
    digest = hashlib.blake2b(f"{seed}\0{kind}\0{stream}\0{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _DRAW_SCALE


class FaultInjector:
    """Numbers the calls of each stream and asks `Faults` about each one (thread-safe)."""

    def __init__(self, faults: Faults | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.set(faults or Faults())

    def set(self, faults: Faults) -> None:
        """New faults, and every stream starts again from call 1."""
        with self._lock:
            self.faults = faults
            self._calls: Counter[str] = Counter()
            self._windows: dict[str, deque[float]] = {}

    def _next(self, stream: str) -> int:
        self._calls[stream] += 1
        return self._calls[stream]

    def api_fault(self, operation: str) -> ApiFault | None:
        """Decide the fate of one API call: over the TPS limit, throttled, a 500, or fine."""
        with self._lock:
            faults = self.faults
            index = self._next(f"api:{operation}")
            limit = faults.tps_limit.get(operation, faults.tps_limit.get("*"))
            if limit is not None and not self._admit(operation, limit):
                return "tps"
            stream = f"api:{operation}"
            if faults.hits("throttle", stream, index):
                return "throttle"
            if faults.hits("error", stream, index):
                return "error"
            return None

    def url_expired(self) -> bool:
        """Whether the URL being issued is handed out already expired."""
        with self._lock:
            return self.faults.hits("expired_url", "url", self._next("url"))

    def download_fault(self) -> DownloadFault | None:
        with self._lock:
            index = self._next("download")
            if self.faults.hits("drop_connection", "download", index):
                return "drop"
            if self.faults.hits("truncate", "download", index):
                return "truncate"
            return None

    def _admit(self, operation: str, limit: int) -> bool:
        """Sliding one-second window: admit the call if fewer than ``limit`` were admitted in it."""
        now = self._clock()
        window = self._windows.setdefault(operation, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(now)
        return True


@dataclass(frozen=True)
class Latency:
    """Time the sandbox adds to each request, to shape benchmarks like the cloud (0: as fast as loopback).

    ``invoicing_ms`` per Invoicing API call; ``document_ms`` before a download's first byte, then at most
    ``document_mb_per_s`` (10^6 bytes per second; 0: no cap); ``services_ms`` per request to one of moto's
    services, by SigV4 service name (``s3``, ``dynamodb``, ``sqs``, ``events``, ``sts``).
    """

    invoicing_ms: float = 0.0
    document_ms: float = 0.0
    document_mb_per_s: float = 0.0
    services_ms: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = [self.invoicing_ms, self.document_ms, self.document_mb_per_s, *self.services_ms.values()]
        if any(v < 0 for v in values):
            raise ValueError("latencies and bandwidth must not be negative")

    def service_seconds(self, service: str) -> float:
        return self.services_ms.get(service, 0.0) / 1000.0

    def as_option(self) -> str:
        """The moto server's ``--latency`` value: ``s3=25,dynamodb=8`` (milliseconds)."""
        return ",".join(f"{name}={ms:g}" for name, ms in sorted(self.services_ms.items()))

    @staticmethod
    def parse_services(option: str) -> dict[str, float]:
        """``s3=25,dynamodb=8`` -> {"s3": 25.0, "dynamodb": 8.0}."""
        parsed: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in option.split(","))):
            name, _, value = part.partition("=")
            parsed[name.strip().lower()] = float(value)
        return parsed


# A cloud-shaped default for benchmarks: an Invoicing call in us-east-1 from a Lambda in the same region,
# a document from S3's pre-signed URL, and each of the services the functions call.
CLOUD = Latency(
    invoicing_ms=150.0,
    document_ms=50.0,
    document_mb_per_s=20.0,
    services_ms={"s3": 25.0, "dynamodb": 8.0, "sqs": 10.0, "events": 10.0, "sts": 10.0},
)
