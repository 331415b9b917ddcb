"""Count what the SDK hides: throttles, 5xx answers, connection errors and retries, per service.

botocore emits `response-received` once per HTTP attempt and `after-call` / `after-call-error` once per
API call, so retries are attempts minus calls. The hooks are registered from the CLI side on the botocore
session every client of the process is created from (`invoice_archiver.dal.clients`), before any client
exists: each client copies the session's handlers when it is created. The Lambda code is not touched.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestThrottled",
    }
)


@dataclass
class ApiCounters:
    attempts: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)
    connection_errors: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def instrument(self, events: Any) -> None:
        """Count the traffic of a botocore session or of `client.meta.events` (idempotent)."""
        tag = f"invoice-archiver-counters-{id(self)}"
        events.register("response-received", self._on_attempt, unique_id=f"{tag}-attempt")
        events.register("after-call", self._on_call, unique_id=f"{tag}-call")
        events.register("after-call-error", self._on_call, unique_id=f"{tag}-call-error")

    def snapshot(self) -> ApiCounters:
        with self._lock:
            return ApiCounters(
                Counter(self.attempts),
                Counter(self.calls),
                Counter(self.throttled),
                Counter(self.server_errors),
                Counter(self.connection_errors),
            )

    def since(self, before: ApiCounters) -> ApiCounters:
        now = self.snapshot()
        return ApiCounters(
            now.attempts - before.attempts,
            now.calls - before.calls,
            now.throttled - before.throttled,
            now.server_errors - before.server_errors,
            now.connection_errors - before.connection_errors,
        )

    @property
    def retries(self) -> Counter[str]:
        return self.attempts - self.calls

    def describe(self, counter: Counter[str]) -> str:
        """'37 (invoicing 30, s3 7)', or '0'."""
        total = sum(counter.values())
        if not total:
            return "0"
        parts = ", ".join(f"{service} {count}" for service, count in sorted(counter.items()) if count)
        return f"{total} ({parts})"

    def _on_attempt(
        self,
        response_dict: dict[str, Any] | None = None,
        parsed_response: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        event_name: str = "",
        **_: Any,
    ) -> None:
        service = _service(event_name)
        status = int((response_dict or {}).get("status_code") or 0)
        code = str(((parsed_response or {}).get("Error") or {}).get("Code", ""))
        with self._lock:
            self.attempts[service] += 1
            if exception is not None and response_dict is None:
                self.connection_errors[service] += 1
            elif status == 429 or code in THROTTLING_CODES:
                self.throttled[service] += 1
            elif status >= 500:
                self.server_errors[service] += 1

    def _on_call(self, event_name: str = "", **_: Any) -> None:
        with self._lock:
            self.calls[_service(event_name)] += 1


def _service(event_name: str) -> str:
    """'response-received.invoicing.GetInvoicePDF' -> 'invoicing'."""
    parts = event_name.split(".")
    return parts[1] if len(parts) > 1 else "unknown"


COUNTERS = ApiCounters()  # one per process, like the clients


def instrument_clients() -> ApiCounters:
    """Count every client created from now on by `invoice_archiver.dal.clients` (call after a reset)."""
    from invoice_archiver.dal import clients

    COUNTERS.instrument(clients.botocore_session())
    return COUNTERS
