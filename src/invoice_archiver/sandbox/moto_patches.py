"""Patches that make moto's SQS fast with thousands of messages, and change nothing it answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def speed_up_moto() -> None:
    """moto's SQS asks for the current time through datetime arithmetic about a hundred times per queued
    message on every ReceiveMessage, which makes a queue of a few thousand messages crawl. The current
    Unix time is `time.time()`; patching that one helper changes no behaviour, only the cost."""
    import time

    import moto.core.utils
    import moto.sqs.models

    original = moto.core.utils.unix_time

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else original(dt)

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    for module in (moto.core.utils, moto.sqs.models):
        module.unix_time = unix_time  # type: ignore[attr-defined]
        module.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]
    _send_without_counting()


_SENDING = threading.local()


def _send_without_counting() -> None:
    """moto's SendMessage reads `queue.attributes` for one flag, and ReceiveMessage reads the retention
    period through GetQueueAttributes for every message it considers; that property counts every message
    in the queue (visible, delayed, in flight) each time, so N messages cost O(N^2). While a thread
    sends, the property answers with the flag alone, and the retention check reads the period itself;
    everywhere else the property is moto's own."""
    from moto.sqs.models import Queue, SQSBackend

    if getattr(SQSBackend.send_message, "_invoice_archiver_patched", False):
        return
    full: Callable[[Any], dict[str, Any]] = vars(Queue)["attributes"].fget
    original_send = SQSBackend.send_message

    def attributes(queue: Any) -> dict[str, Any]:
        if getattr(_SENDING, "active", False):
            return {"ContentBasedDeduplication": str(bool(queue.content_based_deduplication)).lower()}
        return full(queue)

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _SENDING.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _SENDING.active = False

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        # moto's own reads the period through GetQueueAttributes (three full counts) per message received
        period = int(self.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > time.time())

    send_message._invoice_archiver_patched = True  # type: ignore[attr-defined]
    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]
