"""Drive a handler from an SQS queue the way Lambda's event source mapping does, on several workers.

Each worker receives up to `batch_size` messages, hands them to the handler as an SQS event,
deletes the ones not reported in `batchItemFailures` and leaves the rest for redelivery (the queue's
redrive policy moves a message to the DLQ after its maxReceiveCount). Locally a failed message
becomes visible again sooner than the full visibility timeout: after `retry_delay` seconds, doubling
with each receive (2, 4, 8, 16 s by default), so retries stay spread over half a minute.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Invoke = Callable[[dict[str, Any]], dict[str, Any]]
# After Ctrl-C, how long the batches in flight may take to finish before the runner stops anyway.
INTERRUPT_GRACE_SECONDS = 30.0


@dataclass
class DrainStats:
    batches: int = 0
    records: int = 0
    failures: int = 0
    invocation_errors: int = 0
    timed_out: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, records: int, failures: int, error: bool) -> None:
        with self._lock:
            self.batches += 1
            self.records += records
            self.failures += failures
            self.invocation_errors += int(error)


def to_record(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    body = message.get("Body", "")
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody")
        or hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class EventSourceMapping:
    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        invoke: Invoke,
        *,
        workers: int = 4,
        batch_size: int = 10,
        retry_delay: int = 2,
        deadline_seconds: float = 900.0,
    ) -> None:
        self.sqs, self.queue_url, self.invoke = sqs, queue_url, invoke
        self.workers, self.batch_size, self.retry_delay = workers, batch_size, retry_delay
        self.deadline_seconds = deadline_seconds
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self.region = self.queue_arn.split(":")[3]
        self._busy = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.on_batch: Callable[[int, int], None] | None = None  # (records, failed), for progress

    def drain(self) -> DrainStats:
        """Run until the queue is empty and no worker holds a batch (or the deadline passes).

        Ctrl-C stops the workers from taking new batches and waits for the batches in flight (a
        second Ctrl-C does not wait), so no handler is cut off mid-invoice and nothing prints a
        traceback; what was not processed stays in the queue for the next run.
        """
        stats = DrainStats()
        stop_at = time.monotonic() + self.deadline_seconds
        threads = [
            threading.Thread(target=self._work, args=(stats, stop_at), name=f"esm-{n}", daemon=True)
            for n in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        except KeyboardInterrupt:
            self._stop.set()
            grace_until = time.monotonic() + INTERRUPT_GRACE_SECONDS
            for thread in threads:
                thread.join(max(0.0, grace_until - time.monotonic()))
            raise
        if self._error is not None:
            raise self._error
        stats.timed_out = time.monotonic() >= stop_at
        return stats

    def _work(self, stats: DrainStats, stop_at: float) -> None:
        try:
            self._receive_until_empty(stats, stop_at)
        except Exception as exc:  # an endpoint that went away: stop every worker, report it once
            with self._lock:
                self._error = self._error or exc
            self._stop.set()

    def _receive_until_empty(self, stats: DrainStats, stop_at: float) -> None:
        while time.monotonic() < stop_at and not self._stop.is_set():
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                if self._queue_empty():
                    return
                continue
            with self._lock:
                self._busy += 1
            try:
                self._deliver(messages, stats)
            finally:
                with self._lock:
                    self._busy -= 1

    def _deliver(self, messages: list[MessageTypeDef], stats: DrainStats) -> None:
        event = {"Records": [to_record(m, self.queue_arn, self.region) for m in messages]}
        error = False
        try:
            failed = {item["itemIdentifier"] for item in self.invoke(event).get("batchItemFailures", [])}
        except Exception:
            error = True
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
            )
        retry = [m for m in messages if m["MessageId"] in failed]
        if retry:
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self._delay(m)}
                    for n, m in enumerate(retry)
                ],
            )
        stats.add(len(messages), len(failed), error)
        if self.on_batch is not None:
            self.on_batch(len(messages), len(failed))

    def _delay(self, message: MessageTypeDef) -> int:
        received = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        return int(min(300, self.retry_delay * 2 ** (received - 1)))

    def _queue_empty(self) -> bool:
        with self._lock:
            if self._busy:
                return False
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return all(int(value) == 0 for value in attributes.values())
