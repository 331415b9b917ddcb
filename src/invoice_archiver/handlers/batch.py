"""Powertools' BatchProcessor, with the records of one batch handled on a few threads at once.

A fetcher record spends most of its time waiting on the network (the ledger, GetInvoicePDF, the
document host, S3), so a batch of ten done one at a time leaves the function idle. `process()` is
the one method Powertools loops in; here it hands the records to a bounded thread pool instead, and
everything else (partial batch failures, the all-failed error, the response) stays Powertools' own.

Records with the same `key` (the same invoice delivered twice in one batch) run one after the other on
one thread, so the second finds the first's ARCHIVED instead of its live lease. Exactly-once never
depends on that: every invoice is claimed in the ledger with a conditional write, whichever thread,
invocation or process handles it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor

RecordKey = Callable[[dict[str, Any]], str]


class ConcurrentBatchProcessor(BatchProcessor):
    """Handle up to `concurrency` records of a batch at once; 1 is Powertools' sequential loop."""

    def __init__(self, *args: Any, concurrency: int = 1, key: RecordKey | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.concurrency = max(1, concurrency)
        self.key = key

    def process(self) -> list[tuple[Any, ...]]:
        records: list[dict[str, Any]] = list(self.records)
        groups: dict[str, list[int]] = {}
        for index, record in enumerate(records):
            name = self.key(record) if self.key is not None else str(index)
            groups.setdefault(name, []).append(index)
        workers = min(self.concurrency, len(groups))
        if workers <= 1:
            return super().process()
        results: list[Any] = [None] * len(records)

        def run(indexes: list[int]) -> None:
            for index in indexes:
                results[index] = self._process_record(records[index])

        # success_handler/failure_handler only append to lists (atomic); results keep record order.
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="record") as pool:
            for done in [pool.submit(run, indexes) for indexes in groups.values()]:
                done.result()
        return results
