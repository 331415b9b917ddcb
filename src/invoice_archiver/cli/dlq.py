"""What sits in the dead-letter queue: its depth, and which invoices (or malformed messages) are there.

Reading a queue hides what it reads for a visibility timeout; the peek makes every message it read
visible again at once, so a redrive (or the next peek) is not delayed. Receive counts on the DLQ grow,
which nothing reads (the DLQ has no redrive policy of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from invoice_archiver.cli import queues
from invoice_archiver.cli.settle import Listed
from invoice_archiver.models.continuation import ListingContinuation
from invoice_archiver.models.messages import InvoiceMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

PEEK_LIMIT = 1000
PEEK_VISIBILITY_SECONDS = 30


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    invoice: Listed | None  # None: the body is not an invoice message (quarantined as malformed)
    reason: str


def depth(sqs: SQSClient, url: str) -> int:
    """Every message the queue holds, visible, in flight or delayed (0 without a queue)."""
    return queues.depth(sqs, url).total


def peek(sqs: SQSClient, url: str, limit: int = PEEK_LIMIT) -> list[DeadLetter]:
    """Up to `limit` messages of the queue, read and put back."""
    letters: dict[str, DeadLetter] = {}
    handles: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = []
    try:
        while len(letters) < limit:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                handles.append(
                    {
                        "Id": str(len(handles)),
                        "ReceiptHandle": message["ReceiptHandle"],
                        "VisibilityTimeout": 0,
                    }
                )
                attributes: dict[str, Any] = dict(message.get("MessageAttributes", {}))
                reason = attributes.get("ErrorReason", {}).get("StringValue") or _redriven(
                    message.get("Body", "")
                )
                letters[message["MessageId"]] = DeadLetter(
                    message["MessageId"], _invoice(message.get("Body", "")), reason
                )
    finally:
        for start in range(0, len(handles), 10):
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=handles[start : start + 10])
    return list(letters.values())


def _redriven(body: str) -> str:
    try:
        continuation = ListingContinuation.model_validate_json(body)
    except ValidationError:
        return "redriven by SQS after its deliveries failed"
    return (
        f"a listing stopped: its continuation (piece {continuation.piece}, query "
        f"{continuation.query_index + 1}) failed every delivery; run the lister's request again"
    )


def _invoice(body: str) -> Listed | None:
    try:
        message = InvoiceMessage.model_validate_json(body)
    except ValidationError:
        return None
    return Listed(message.account_id, message.billing_period, message.invoice_id)
