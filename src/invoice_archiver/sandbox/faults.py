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
