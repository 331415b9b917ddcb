"""`make soak`: 10,000 invoices through the real pipeline under the fault matrix; none lost, none twice.

The sandbox answers 20 % of Invoicing calls with ThrottlingException and 5 % with a 500, issues 5 % of
URLs already expired, drops 3 % of downloads mid-body and truncates 3 %; 5 % of the messages are
delivered twice (a copy is enqueued beside the lister's); and 1 % of invoices lose their worker mid-invoice:
after its documents are in S3 and before summary.json, every later call of that worker fails, so
nothing is cleaned up, its lease stays live until LEASE_SECONDS (5) and the redelivery takes over.

At the end it reads the ledger, the bucket (every object version) and the sandbox's counters and prints:
archived, lost (listed but not ARCHIVED: must be 0), archived twice (a key with more than one version,
or an invoice with more than one summary.json: must be 0), checksums verified (every document read back
and hashed against the emulator's own SHA-256: must be 100 %), wall time and API calls per invoice.
Exit status 1 if any of the three fails. Not part of CI: it takes about 20-30 minutes on 2 cores.

    .venv/bin/python bench/soak.py [--invoices 10000] [--workers 5] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import common

ACCOUNTS = ("123456789012", "210987654321", "345678901234", "456789012345")
PERIODS = ((2026, 6), (2026, 7), (2026, 8), (2026, 9), (2026, 10))
BUCKET, TABLE, QUEUE = "soak-archive", "soak-ledger", "soak-invoices"
DUPLICATE_SHARE = 0.05
KILL_SHARE = 0.01


class WorkerKilled(Exception):
    """Stands for a fetcher that died: raised by every later call the dead worker tries."""


class Killer:
    """Kills the worker of KILL_SHARE of invoices after their documents, before summary.json, once each."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._dead = threading.local()
        self._lock = threading.Lock()
        self.killed: set[str] = set()

    def revive(self) -> None:
        self._dead.value = False

    def before_send(self, event_name: str = "", request: Any = None, **_: Any) -> None:
        if getattr(self._dead, "value", False):
            raise WorkerKilled("this worker is dead")
        url = str(getattr(request, "url", ""))
        if event_name.endswith("s3.PutObject") and url.split("?")[0].endswith("/summary.json"):
            invoice = url.split("?")[0].rsplit("/", 2)[-2]
            with self._lock:
                if invoice in self.killed or self._rng.random() >= KILL_SHARE:
                    return
                self.killed.add(invoice)
            self._dead.value = True
            raise WorkerKilled("killed mid-invoice")


def _instrument(killer: Killer, duplicator: Duplicator, calls: Counter[str]) -> None:
    """Hooks on the one botocore session every client of the functions comes from."""
    from invoice_archiver.dal import clients

    events = clients.botocore_session().get_component("event_emitter")
    events.register("before-send", killer.before_send)
    events.register("provide-client-params.sqs.SendMessageBatch", duplicator.on_send)

    def count(event_name: str = "", **_: Any) -> None:
        calls[event_name.split(".")[1]] += 1

    events.register("response-received", count)


class Duplicator:
    """Keeps a copy of DUPLICATE_SHARE of the messages the lister sends, to deliver them a second time."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.bodies: list[str] = []

    def on_send(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.bodies += [
                e["MessageBody"] for e in params.get("Entries", []) if self._rng.random() < DUPLICATE_SHARE
            ]

    def send_copies(self, queue_url: str) -> int:
        from invoice_archiver.dal import clients

        copies, self.bodies = self.bodies, []
        for start in range(0, len(copies), 10):
            chunk = copies[start : start + 10]
            clients.sqs().send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": str(n), "MessageBody": b} for n, b in enumerate(chunk)]
            )
        return len(copies)


def run(invoices: int, workers: int, concurrency: int, workdir: Path) -> dict[str, Any]:
    from invoice_archiver.config import load_settings
    from invoice_archiver.dal import clients
    from invoice_archiver.handlers import fetcher, lister
    from invoice_archiver.local import resources
    from invoice_archiver.local.pipeline import drain_queue, run_pass
    from invoice_archiver.observability import logger
    from invoice_archiver.sandbox.dataset import generate
    from invoice_archiver.sandbox.faults import Faults
    from invoice_archiver.sandbox.runner import Sandbox

    per = max(1, round(invoices / (len(ACCOUNTS) * len(PERIODS))))
    dataset = generate(
        seed=10_000,
        accounts=ACCOUNTS,
        periods=PERIODS,
        invoices_per_account_period=per,
        receiver_roles=("BUYER",),
        document_size=(1024, 4096),
        supplemental=(0, 2),
    )
    faults = Faults(
        seed=10,
        throttle_rate=0.20,
        error_rate=0.05,
        expired_url_rate=0.05,
        drop_connection_rate=0.03,
        truncate_rate=0.03,
    )
    os.environ.update(
        {
            **common.BASE_ENV,
            "ARCHIVE_BUCKET": BUCKET,
            "LEDGER_TABLE": TABLE,
            "ACCOUNT_IDS": ",".join(dataset.accounts),
            "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "LEASE_SECONDS": "5",
            # A ceiling well above what 2 cores archive: random throttles (not rate-driven ones)
            # keep the pacer's AIMD busy; without a ceiling it would settle at a few calls per second.
            "INVOICING_RATE_LIMIT": "50",
            "FETCHER_CONCURRENCY": str(concurrency),
        }
    )
    killer, duplicator, calls = Killer(seed=11), Duplicator(seed=12), Counter[str]()
    log = (workdir / "soak.log").open("w")
    started = time.monotonic()
    with Sandbox(dataset=dataset, faults=faults, moto_in_process=False, use_existing_endpoints=False) as box:
        assert box.emulator is not None
        logger.registered_handler.setStream(log)  # type: ignore[attr-defined]
        clients.reset()
        resources.ensure_bucket(BUCKET)
        resources.ensure_table(TABLE)
        queue_url, dlq_url = resources.ensure_queues(QUEUE)
        os.environ.update({"INVOICE_QUEUE_URL": queue_url, "DEAD_LETTER_QUEUE_URL": dlq_url})
        clients.reset()
        settings = load_settings()
        _instrument(killer, duplicator, calls)
        handle = fetcher.record_handler

        def record_handler(record: Any) -> str:
            killer.revive()  # each delivery runs on a live worker
            return handle(record)

        fetcher.record_handler = record_handler  # type: ignore[assignment]
        list_handler = lister.handler
        duplicated = [0]

        def list_then_duplicate(event: dict[str, Any], context: Any) -> dict[str, Any]:
            result = dict(list_handler(event, context))
            duplicated[0] = duplicator.send_copies(queue_url)
            return result

        lister.handler = list_then_duplicate  # type: ignore[assignment]
        periods = [f"{y:04d}-{m:02d}" for y, m in PERIODS]
        with contextlib.redirect_stdout(log):
            report = run_pass({"billing_periods": periods}, settings, workers=workers)
            # The local event source mapping stops after 15 minutes, as one Lambda invocation would;
            # the soak keeps draining until the queue is empty.
            while report.drain is not None and report.drain.timed_out:
                report.drain = drain_queue(queue_url, workers, None, 0)
        wall = time.monotonic() - started
        stats = box.emulator.stats.snapshot()
        verdict = verify(dataset, settings)
    log.close()
    api_calls = sum(calls.values())
    return {
        "invoices": dataset.invoice_count,
        "documents": dataset.document_count,
        "listed": report.listed,
        "duplicated": duplicated[0],
        "killed": len(killer.killed),
        "wall_seconds": wall,
        "api_calls": dict(calls),
        "api_calls_per_invoice": api_calls / dataset.invoice_count,
        "emulator": {k: v for k, v in stats.items() if k != "calls"} | {"calls": stats["calls"]},
        **verdict,
    }


def verify(dataset: Any, settings: Any) -> dict[str, Any]:
    """Ledger, bucket and bytes against the dataset."""
    from invoice_archiver.dal import clients
    from invoice_archiver.dal.ledger import invoices
    from invoice_archiver.models.period import BillingPeriod
    from invoice_archiver.sandbox.documents import document_sha256

    dynamodb, s3 = clients.dynamodb(), clients.s3()
    status: dict[str, str] = {}
    items: dict[str, dict[str, Any]] = {}
    for account in dataset.accounts:
        for year, month in PERIODS:
            period = BillingPeriod.parse(f"{year:04d}-{month:02d}")
            for item in invoices.query_period(dynamodb, settings.ledger_table, account, period):
                status[str(item["invoice_id"])] = str(item.get("status"))
                items[str(item["invoice_id"])] = item
    archived = [i for i in dataset.invoices if status.get(i.invoice_id) == "ARCHIVED"]
    lost = [i.invoice_id for i in dataset.invoices if status.get(i.invoice_id) != "ARCHIVED"]
    versions: Counter[str] = Counter()
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=settings.archive_bucket):
        for version in page.get("Versions", []):
            versions[version["Key"]] += 1
    twice_keys = sorted(k for k, n in versions.items() if n > 1)
    summaries = Counter(k.rsplit("/", 2)[-2] for k in versions if k.endswith("/summary.json"))
    twice_invoices = sorted(k for k, n in summaries.items() if n > 1)
    checked, good = _check_bytes(s3, settings.archive_bucket, items, archived, document_sha256)
    return {
        "archived": len(archived),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "twice": len(twice_keys) + len(twice_invoices),
        "twice_keys": twice_keys[:20],
        "objects": len(versions),
        "checksums_checked": checked,
        "checksums_good": good,
    }


def _documents(item: dict[str, Any]) -> list[dict[str, Any]]:
    return list(item.get("documents") or [])


def _check_bytes(
    s3: Any, bucket: str, items: dict[str, Any], archived: list[Any], sha: Any
) -> tuple[int, int]:
    """Read every archived document back and hash it; compare with what the emulator served."""
    jobs: list[tuple[str, str]] = []
    for invoice in archived:
        served = {sha(doc) for doc in invoice.documents}
        recorded = _documents(items[invoice.invoice_id])
        if {str(d.get("sha256")) for d in recorded} != served or len(recorded) != len(invoice.documents):
            jobs.append(("", ""))  # a wrong or missing document counts as a failed check
            continue
        jobs += [(str(d["key"]), str(d["sha256"])) for d in recorded]

    def check(job: tuple[str, str]) -> bool:
        key, digest = job
        if not key:
            return False
        obj = s3.get_object(Bucket=bucket, Key=key)
        data = obj["Body"].read()
        return hashlib.sha256(data).hexdigest() == digest == obj["Metadata"].get("sha256")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(check, jobs))
    return len(results), sum(results)


def report(r: dict[str, Any]) -> bool:
    share = r["checksums_good"] / r["checksums_checked"] if r["checksums_checked"] else 0.0
    emulator = r["emulator"]
    per_service = ", ".join(f"{k} {v / r['invoices']:.2f}" for k, v in sorted(r["api_calls"].items()))
    print(
        f"soak: {r['invoices']:,} invoices ({r['documents']:,} documents), "
        f"{r['duplicated']} duplicate deliveries, {r['killed']} workers killed mid-invoice; "
        f"sandbox: {emulator['throttled']} throttled, {emulator['errors_5xx']} 5xx, "
        f"{emulator['expired_urls']} expired URLs, {emulator['dropped']} dropped, "
        f"{emulator['truncated']} truncated"
    )
    print(
        f"  archived {r['archived']:,}   lost {r['lost']}   archived twice {r['twice']}   "
        f"checksums verified {r['checksums_good']:,}/{r['checksums_checked']:,} ({share:.2%})   "
        f"wall {r['wall_seconds'] / 60:.1f} min   API calls per invoice {r['api_calls_per_invoice']:.2f} "
        f"({per_service})"
    )
    ok = r["lost"] == 0 and r["twice"] == 0 and share == 1.0 and r["archived"] == r["invoices"]
    if not ok:
        print(f"  FAILED: lost {r['lost_ids']}, twice {r['twice_keys']}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=5, help="concurrent fetchers (the stack's default)")
    parser.add_argument("--concurrency", type=int, default=4, help="FETCHER_CONCURRENCY")
    parser.add_argument("--json", type=Path, help="also write the raw result here")
    args = parser.parse_args()
    workdir = common.ROOT / ".local" / "soak"
    workdir.mkdir(parents=True, exist_ok=True)
    result = run(args.invoices, args.workers, args.concurrency, workdir)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, sort_keys=True))
    return 0 if report(result) else 1


if __name__ == "__main__":
    sys.exit(main())
