"""The set-up cloud.py and cost.py share, in their child process: the throughput dataset, and the real
pipeline's resources on a sandbox answering at cloud latencies (`sandbox.faults.CLOUD`), moto in a process
of its own, the functions' logs in a file.

Imported by the child only: the parent process never loads the package.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import throughput

from invoice_archiver.config import Settings, load_settings
from invoice_archiver.dal import clients
from invoice_archiver.local import resources
from invoice_archiver.observability import logger
from invoice_archiver.sandbox.dataset import Dataset, generate
from invoice_archiver.sandbox.faults import CLOUD, Faults
from invoice_archiver.sandbox.runner import Sandbox


def dataset(invoices: int) -> Dataset:
    """throughput.py's scenario of about `invoices` invoices, generated."""
    spec = throughput.dataset_spec(invoices)["generate"]
    return generate(
        seed=spec["seed"],
        accounts=tuple(spec["accounts"]),
        periods=tuple((int(p[:4]), int(p[5:])) for p in spec["periods"]),
        invoices_per_account_period=spec["invoices_per_account_period"],
        document_size=tuple(spec["document_size"]),
        supplemental=tuple(spec["supplemental"]),
    )


@contextlib.contextmanager
def running(
    data: Dataset,
    *,
    bucket: str,
    table: str,
    queue: str,
    log_file: Path,
    env: dict[str, str],
    faults: Faults | None = None,
) -> Iterator[tuple[Settings, IO[str]]]:
    """The sandbox started, the bucket, ledger, queue and DLQ created, stdout and the functions' logs sent
    to `log_file`; yields the functions' settings (the environment plus `env`) and the open log."""
    os.environ.update(
        {
            "ARCHIVE_BUCKET": bucket,
            "LEDGER_TABLE": table,
            "ACCOUNT_IDS": ",".join(data.accounts),
            "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            **env,
        }
    )
    with (
        Sandbox(
            dataset=data, faults=faults, latency=CLOUD, moto_in_process=False, use_existing_endpoints=False
        ),
        log_file.open("w") as log,
        contextlib.redirect_stdout(log),
    ):
        logger.registered_handler.setStream(log)  # type: ignore[attr-defined]
        clients.reset()
        resources.ensure_bucket(bucket)
        resources.ensure_table(table)
        queue_url, dlq_url = resources.ensure_queues(queue)
        os.environ.update({"INVOICE_QUEUE_URL": queue_url, "DEAD_LETTER_QUEUE_URL": dlq_url})
        clients.reset()
        yield load_settings(), log
