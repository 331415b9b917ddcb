"""How many messages a queue holds: waiting (visible), in flight (received, not yet deleted), delayed.

SQS's counts are approximate (they settle within about a minute); callers that decide on them ask twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class Depth:
    waiting: int = 0
    in_flight: int = 0
    delayed: int = 0

    @property
    def total(self) -> int:
        return self.waiting + self.in_flight + self.delayed

    @property
    def idle(self) -> bool:
        """Messages wait and none is being worked on: nothing consumes the queue."""
        return self.waiting > 0 and self.in_flight == 0

    def describe(self) -> str:
        parts = [f"{self.waiting} waiting", f"{self.in_flight} in flight"]
        if self.delayed:
            parts.append(f"{self.delayed} delayed")
        return ", ".join(parts)


def depth(sqs: SQSClient, url: str) -> Depth:
    if not url:
        return Depth()
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return Depth(
        waiting=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )
