"""invoice_archiver.dal.queue.send_batch against a tiny fake SQS client (the fake is the AWS client)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from invoice_archiver.dal.queue import (
    BATCH_SIZE,
    MAX_ATTRIBUTE_LENGTH,
    SEND_ATTEMPTS,
    SendFailed,
    quarantine,
    send_batch,
)

from .factories import QUEUE_URL

# Decides, per call and per entry body, whether SQS fails it: None (sent) or (code, sender_fault).
FailureRule = Callable[[int, str], tuple[str, bool] | None]


class FakeSqs:
    """Records every SendMessageBatch call and which bodies SQS accepted; failures follow `rule`."""

    def __init__(self, rule: FailureRule | None = None) -> None:
        self.rule: FailureRule = rule or (lambda call, body: None)
        self.calls: list[dict[str, Any]] = []
        self.delivered: list[str] = []
        self.single: list[dict[str, Any]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        call = len(self.calls)
        self.calls.append({"QueueUrl": QueueUrl, "Entries": [dict(e) for e in Entries]})
        assert 1 <= len(Entries) <= BATCH_SIZE, "SQS rejects empty or oversized batches"
        assert len({e["Id"] for e in Entries}) == len(Entries), "SQS rejects duplicate entry ids"
        successful, failed = [], []
        for entry in Entries:
            failure = self.rule(call, entry["MessageBody"])
            if failure is None:
                self.delivered.append(entry["MessageBody"])
                successful.append(
                    {"Id": entry["Id"], "MessageId": f"m-{call}-{entry['Id']}", "MD5OfMessageBody": "x"}
                )
            else:
                code, sender_fault = failure
                failed.append({"Id": entry["Id"], "SenderFault": sender_fault, "Code": code, "Message": "no"})
        response: dict[str, Any] = {"Successful": successful, "ResponseMetadata": {"HTTPStatusCode": 200}}
        if failed:
            response["Failed"] = failed
        return response

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.single.append(kwargs)
        return {"MessageId": "dlq-1"}


def make_bodies(count: int) -> list[str]:
    """Factory: distinct message bodies shaped like the lister's."""
    return [f'{{"version":1,"invoice_id":"INV-{n}"}}' for n in range(count)]


def no_sleep(seconds: float) -> None:
    assert 0 < seconds <= 5.0


def test_all_sent_in_one_call() -> None:
    # Given a batch of ten bodies and an SQS that accepts all
    sqs, bodies = FakeSqs(), make_bodies(10)

    # When sent
    sent = send_batch(sqs, QUEUE_URL, bodies, sleep=no_sleep)  # type: ignore[arg-type]

    # Then one call, every body once, ids unique per batch
    assert sent == 10
    assert len(sqs.calls) == 1
    assert sqs.calls[0]["QueueUrl"] == QUEUE_URL
    assert sqs.delivered == bodies


def test_transient_failures_are_retried_until_sent_none_lost_none_twice() -> None:
    # Given SQS failing bodies 2 and 7 on the first call and body 7 again on the second (SenderFault False)
    failing = {0: {"INV-2", "INV-7"}, 1: {"INV-7"}}

    def rule(call: int, body: str) -> tuple[str, bool] | None:
        return ("ServiceUnavailable", False) if any(f'"{i}"' in body for i in failing.get(call, ())) else None

    sqs, bodies, sleeps = FakeSqs(rule), make_bodies(10), []

    # When sent
    sent = send_batch(sqs, QUEUE_URL, bodies, sleep=sleeps.append)  # type: ignore[arg-type]

    # Then each body was accepted exactly once, and retries carried only the failed entries
    assert sent == 10
    assert Counter(sqs.delivered) == Counter(bodies)
    assert [len(call["Entries"]) for call in sqs.calls] == [10, 2, 1]
    assert [e["MessageBody"] for e in sqs.calls[1]["Entries"]] == [bodies[2], bodies[7]]
    assert [e["MessageBody"] for e in sqs.calls[2]["Entries"]] == [bodies[7]]
    # and it backed off between attempts, boundedly
    assert len(sleeps) == 2
    assert all(0 < s <= 5.0 for s in sleeps)


def test_random_transient_failures_never_lose_or_duplicate() -> None:
    # Given many seeded runs where SQS fails a random subset for up to five calls
    for seed in range(200):
        rng = random.Random(seed)
        bad_calls = rng.randint(0, SEND_ATTEMPTS - 1)

        def rule(
            call: int, body: str, rng: random.Random = rng, bad_calls: int = bad_calls
        ) -> tuple[str, bool] | None:
            return ("InternalError", False) if call < bad_calls and rng.random() < 0.5 else None

        sqs, bodies = FakeSqs(rule), make_bodies(rng.randint(1, BATCH_SIZE))

        # When sent, Then every body lands exactly once
        assert send_batch(sqs, QUEUE_URL, bodies, sleep=no_sleep) == len(bodies)  # type: ignore[arg-type]
        assert Counter(sqs.delivered) == Counter(bodies), seed
        assert len(sqs.calls) <= SEND_ATTEMPTS


def test_sender_fault_raises_naming_the_code_without_retrying() -> None:
    # Given SQS rejecting one body as the sender's fault
    def rule(call: int, body: str) -> tuple[str, bool] | None:
        return ("InvalidMessageContents", True) if '"INV-3"' in body else None

    sqs = FakeSqs(rule)

    # When sent, Then SendFailed names the code, and the batch is not retried
    with pytest.raises(SendFailed, match=r"1 message\(s\) rejected by SQS: InvalidMessageContents"):
        send_batch(sqs, QUEUE_URL, make_bodies(5), sleep=no_sleep)  # type: ignore[arg-type]
    assert len(sqs.calls) == 1


def test_exhausting_attempts_raises() -> None:
    # Given SQS that always fails one body transiently
    def rule(call: int, body: str) -> tuple[str, bool] | None:
        return ("ServiceUnavailable", False) if '"INV-0"' in body else None

    sqs, sleeps = FakeSqs(rule), []

    # When sent with three attempts
    with pytest.raises(SendFailed, match=r"1 message\(s\) still unsent after 3 attempts"):
        send_batch(sqs, QUEUE_URL, make_bodies(4), attempts=3, sleep=sleeps.append)  # type: ignore[arg-type]

    # Then exactly three calls and two back-offs were made, and the rest was sent once
    assert len(sqs.calls) == 3
    assert len(sleeps) == 2
    assert Counter(sqs.delivered) == Counter(make_bodies(4)[1:])


def test_default_attempts_are_bounded() -> None:
    sqs = FakeSqs(lambda call, body: ("ServiceUnavailable", False))
    with pytest.raises(SendFailed, match=f"after {SEND_ATTEMPTS} attempts"):
        send_batch(sqs, QUEUE_URL, make_bodies(1), sleep=no_sleep)  # type: ignore[arg-type]
    assert len(sqs.calls) == SEND_ATTEMPTS


def test_more_than_ten_bodies_is_a_value_error_before_any_call() -> None:
    sqs = FakeSqs()
    with pytest.raises(ValueError, match="at most 10 messages per batch"):
        send_batch(sqs, QUEUE_URL, make_bodies(11), sleep=no_sleep)  # type: ignore[arg-type]
    assert sqs.calls == []


def test_quarantine_sends_the_body_with_its_reason() -> None:
    # Given a malformed message and a very long reason
    sqs = FakeSqs()

    # When quarantined
    quarantine(sqs, QUEUE_URL + "-dlq", "{bad", reason="r" * 5000, source_id="msg-1")  # type: ignore[arg-type]

    # Then one message goes to the DLQ with the reason cut to the attribute limit
    (sent,) = sqs.single
    assert sent["QueueUrl"] == QUEUE_URL + "-dlq"
    assert sent["MessageBody"] == "{bad"
    attributes = sent["MessageAttributes"]
    assert attributes["ErrorType"] == {"DataType": "String", "StringValue": "MalformedMessage"}
    assert attributes["ErrorReason"]["StringValue"] == "r" * MAX_ATTRIBUTE_LENGTH
    assert attributes["SourceMessageId"]["StringValue"] == "msg-1"
