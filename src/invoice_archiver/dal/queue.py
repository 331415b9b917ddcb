"""SQS: the lister's batched sends (failed entries retried) and the fetcher's quarantine to the DLQ."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from invoice_archiver.constants import Metric
from invoice_archiver.dal.sdk import Needs
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

BATCH_SIZE = 10
SEND_ATTEMPTS = 6
MAX_ATTRIBUTE_LENGTH = 1024

# What this module sends and reads (checked at cold start by invoice_archiver.dal.sdk).
SENDING = Needs(
    "sqs",
    "SendMessageBatch",
    request=("Entries.Id", "Entries.MessageBody"),
    response=("Successful", "Failed"),
)
QUARANTINING = Needs("sqs", "SendMessage", request=("MessageBody", "MessageAttributes"))


class SendFailed(Exception):
    """Some messages could not be sent after every retry; the lister run must fail and be retried."""


def send_batch(
    client: SQSClient,
    queue_url: str,
    bodies: Sequence[str],
    *,
    attempts: int = SEND_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send up to ten bodies with SendMessageBatch, retrying the entries that failed. Returns the count."""
    if len(bodies) > BATCH_SIZE:
        raise ValueError(f"at most {BATCH_SIZE} messages per batch")
    pending: list[SendMessageBatchRequestEntryTypeDef] = [
        {"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies)
    ]
    for attempt in range(attempts):
        if attempt:
            sleep(min(5.0, 0.1 * 2**attempt) * random.uniform(0.5, 1.0))
        response = client.send_message_batch(QueueUrl=queue_url, Entries=pending)
        failed = response.get("Failed", [])
        permanent = [f for f in failed if f.get("SenderFault")]
        if permanent:
            reasons = "; ".join(f"{f.get('Code')}: {f.get('Message', '')}" for f in permanent)
            raise SendFailed(f"{len(permanent)} message(s) rejected by SQS: {reasons}")
        retry_ids = {f["Id"] for f in failed}
        pending = [entry for entry in pending if entry["Id"] in retry_ids]
        if not pending:
            return len(bodies)
    raise SendFailed(f"{len(pending)} message(s) still unsent after {attempts} attempts")


def quarantine(
    client: SQSClient,
    dead_letter_queue_url: str,
    body: str,
    *,
    reason: str,
    source_id: str,
    error_type: str = "MalformedMessage",
) -> None:
    """Put a message (or a summary) that can never succeed into the DLQ, with why, for a person."""
    client.send_message(
        QueueUrl=dead_letter_queue_url,
        MessageBody=body,
        MessageAttributes={
            "ErrorType": {"DataType": "String", "StringValue": error_type},
            "ErrorReason": {"DataType": "String", "StringValue": reason[:MAX_ATTRIBUTE_LENGTH]},
            "SourceMessageId": {"DataType": "String", "StringValue": source_id},
        },
    )


class NoDeadLetterQueue(ValueError):
    """A message must be quarantined and no DEAD_LETTER_QUEUE_URL is configured: the record fails, and
    SQS's own redrive moves it once its receives run out."""


def quarantine_record(
    client: SQSClient,
    dead_letter_queue_url: str | None,
    body: str,
    *,
    message_id: str,
    reason: str,
    error_type: str,
) -> None:
    """The handlers' one way to quarantine a record that can never succeed: logged with its reason, sent
    to the DLQ with it, counted in MessagesQuarantined (no DLQ configured: NoDeadLetterQueue)."""
    logger.error(
        "message quarantined", extra={"message_id": message_id, "reason": reason, "error_type": error_type}
    )
    if not dead_letter_queue_url:
        raise NoDeadLetterQueue(f"{error_type}: {reason}")
    quarantine(
        client, dead_letter_queue_url, body, reason=reason, source_id=message_id, error_type=error_type
    )
    metrics.add_metric(name=Metric.MESSAGES_QUARANTINED, unit="Count", value=1)
