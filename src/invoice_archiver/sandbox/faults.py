"""Fault injection for the emulator: throttling, 5xx, per-operation TPS limits and broken downloads.

`Faults` is the immutable setting; `FaultInjector` draws from one seeded RNG under a lock, so a run with
the same seed and the same call order injects the same faults.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

ApiFault = Literal["throttle", "tps", "error"]
DownloadFault = Literal["drop", "truncate"]


@dataclass(frozen=True)
class Faults:
    """Share of calls (0.0 to 1.0) that fail in each way; ``tps_limit`` maps operation -> calls/second.

    A ``tps_limit`` key ``"*"`` applies to every operation without its own limit.
    """

    seed: int = 0
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    tps_limit: Mapping[str, int] = field(default_factory=dict)
    expired_url_rate: float = 0.0
    drop_connection_rate: float = 0.0
    truncate_rate: float = 0.0
    retry_after_seconds: int = 1

    def __post_init__(self) -> None:
        for name in (
            "throttle_rate",
            "error_rate",
            "expired_url_rate",
            "drop_connection_rate",
            "truncate_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for op, limit in self.tps_limit.items():
            if limit < 1:
                raise ValueError(f"tps_limit[{op!r}] must be at least 1, got {limit}")


class FaultInjector:
    def __init__(self, faults: Faults | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.set(faults or Faults())

    def set(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
            self._windows: dict[str, deque[float]] = {}

    def api_fault(self, operation: str) -> ApiFault | None:
        """Decide the fate of one API call: over the TPS limit, randomly throttled, a 500, or fine."""
        with self._lock:
            faults = self.faults
            limit = faults.tps_limit.get(operation, faults.tps_limit.get("*"))
            if limit is not None and not self._admit(operation, limit):
                return "tps"
            if faults.throttle_rate and self._rng.random() < faults.throttle_rate:
                return "throttle"
            if faults.error_rate and self._rng.random() < faults.error_rate:
                return "error"
            return None

    def url_expired(self) -> bool:
        with self._lock:
            return bool(self.faults.expired_url_rate) and self._rng.random() < self.faults.expired_url_rate

    def download_fault(self) -> DownloadFault | None:
        with self._lock:
            faults = self.faults
            if faults.drop_connection_rate and self._rng.random() < faults.drop_connection_rate:
                return "drop"
            if faults.truncate_rate and self._rng.random() < faults.truncate_rate:
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
