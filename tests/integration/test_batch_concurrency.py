"""One fetcher batch archived on several threads: partial failures, the lease and exactly-once hold."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from invoice_archiver.handlers import fetcher
from invoice_archiver.logic import fetch_invoice
from invoice_archiver.logic.fetch_context import FetchContext
from invoice_archiver.sandbox.dataset import generate
from tests.integration.conftest import Pipeline, assert_archived, message_for

DATASET = generate(
    seed=31,
    accounts=("123456789012",),
    periods=((2026, 10),),
    invoices_per_account_period=12,
    document_size=(1024, 2048),
    supplemental=(0, 2),
)


class Overlap:
    """Wraps fetch_invoice.archive: how many ran at once, at most; optionally fails one invoice."""

    def __init__(self, fail: str | None = None) -> None:
        self.running = self.most = 0
        self.fail = fail
        self._lock = threading.Lock()

    def wrap(self, archive: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(context: FetchContext, message: Any, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                if message.invoice_id == self.fail:
                    raise RuntimeError("injected failure")
                return archive(context, message, *args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return wrapped


@pytest.fixture
def overlap(monkeypatch: pytest.MonkeyPatch) -> Callable[[str | None], Overlap]:
    def install(fail: str | None = None) -> Overlap:
        watcher = Overlap(fail)
        monkeypatch.setattr(fetch_invoice, "archive", watcher.wrap(fetch_invoice.archive))
        return watcher

    return install


def _puts(pipeline: Pipeline) -> int:
    moto = pipeline.sandbox.moto
    assert moto is not None
    return moto.requests.count(service="s3", operation="PutObject")


def _pdf_calls(pipeline: Pipeline) -> int:
    emulator = pipeline.sandbox.emulator
    assert emulator is not None
    return int(emulator.stats.snapshot()["calls"].get("GetInvoicePDF", 0))


def test_a_batch_runs_its_records_at_once_and_a_duplicate_after_its_twin(
    make_pipeline: Callable[..., Pipeline], overlap: Callable[[str | None], Overlap]
) -> None:
    # Given FETCHER_CONCURRENCY=4 and a batch of 10: nine invoices, the first of them twice
    pipeline = make_pipeline(DATASET, env={"FETCHER_CONCURRENCY": "4"})
    invoices = DATASET.invoices[:9]
    bodies = [message_for(i.invoice_id) for i in invoices]
    watcher = overlap(None)

    # When the fetcher handles the batch
    response = pipeline.fetch([*bodies, bodies[0]])

    # Then several records ran at once, never more than four
    assert 1 < watcher.most <= 4
    # ... no record failed: the duplicate ran after its twin on the same thread and found it ARCHIVED
    assert response == {"batchItemFailures": []}
    # ... and each invoice was fetched and written exactly once
    assert_archived(pipeline, invoices)
    assert _pdf_calls(pipeline) == len(invoices)
    assert _puts(pipeline) == sum(len(i.documents) + 1 for i in invoices)


def test_with_concurrency_one_the_records_run_one_after_the_other(
    make_pipeline: Callable[..., Pipeline], overlap: Callable[[str | None], Overlap]
) -> None:
    pipeline = make_pipeline(DATASET, env={"FETCHER_CONCURRENCY": "1"})
    watcher = overlap(None)
    response = pipeline.fetch([message_for(i.invoice_id) for i in DATASET.invoices[:4]])
    assert response == {"batchItemFailures": []}
    assert watcher.most == 1


def test_a_failing_record_fails_alone_while_the_others_run_concurrently(
    make_pipeline: Callable[..., Pipeline], overlap: Callable[[str | None], Overlap]
) -> None:
    # Given a batch of six where archiving the third raises
    pipeline = make_pipeline(DATASET, env={"FETCHER_CONCURRENCY": "4"})
    invoices = DATASET.invoices[:6]
    overlap(invoices[2].invoice_id)

    # When the fetcher handles the batch
    response = pipeline.fetch([message_for(i.invoice_id) for i in invoices])

    # Then exactly that record is reported failed (SQS redelivers it), the other five are archived
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-2"}]}
    assert_archived(pipeline, [i for n, i in enumerate(invoices) if n != 2])
    assert invoices[2].invoice_id not in {
        k for k, v in pipeline.ledger().items() if v["status"] == "ARCHIVED"
    }


def test_two_concurrent_batches_with_the_same_invoices_archive_each_once(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given two fetcher invocations at the same moment, each with the same six invoices in another order
    pipeline = make_pipeline(DATASET, env={"FETCHER_CONCURRENCY": "4"})
    invoices = DATASET.invoices[:6]
    bodies = [message_for(i.invoice_id) for i in invoices]
    start = threading.Barrier(2)
    responses: list[dict[str, Any]] = []

    def invoke(batch: list[str]) -> None:
        start.wait()
        responses.append(pipeline.fetch(batch))

    threads = [
        threading.Thread(target=invoke, args=(bodies,)),
        threading.Thread(target=invoke, args=(bodies[::-1],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then a record that lost a race fails alone (a live lease: SQS redelivers it), and its
    # redelivery finds the invoice ARCHIVED
    lost = [item["itemIdentifier"] for r in responses for item in r["batchItemFailures"]]
    assert len(lost) <= len(invoices)
    redelivered = [bodies[int(ident.removeprefix("msg-"))] for ident in lost]
    if redelivered:
        assert pipeline.fetch(sorted(set(redelivered))) == {"batchItemFailures": []}
    # ... and every invoice was fetched once and each of its objects written once
    assert_archived(pipeline, invoices)
    assert _pdf_calls(pipeline) == len(invoices)
    assert _puts(pipeline) == sum(len(i.documents) + 1 for i in invoices)
    assert fetcher.invoice_key({"body": bodies[0], "messageId": "m"}).endswith(invoices[0].invoice_id)
