"""A daily scheduled run over an archive where nothing changed: what it costs.

    .venv/bin/python bench/daily.py                      # 10,000 archived invoices
    .venv/bin/python bench/daily.py --invoices 2000 --json out.json

Seeds the sandbox with N invoices over 2 accounts and the 3 periods a scheduled run lists (the last complete
one and LOOKBACK_PERIODS=2 before it), and the ledger with each of them ARCHIVED exactly as the fetcher
records it (fingerprint of the summary as the lister lists it, 3 documents, no revisit due). Then fires one
scheduled event at the real lister handler, drains the queue through the real fetcher, and prints: SQS
messages sent, Invoicing API calls, DynamoDB read units and seconds.

DynamoDB read units are computed as DynamoDB bills a Query (moto reports a constant): per page, the size of
every item read (the whole item, whatever the projection), rounded up to 4 KB, times 0.5 for an eventually
consistent read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
ACCOUNTS = ("123456789012", "210987654321")
PERIODS = ((2026, 8), (2026, 9), (2026, 10))
BUCKET, TABLE, QUEUE = "bench-archive", "bench-ledger", "bench-invoices"
PAGE_BYTES = 1024 * 1024  # a Query page reads at most 1 MB


def run(invoices: int) -> dict[str, Any]:
    import os

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]

    from invoice_archiver.dal import clients
    from invoice_archiver.handlers import environment, fetcher, lister
    from invoice_archiver.local import resources
    from invoice_archiver.local.event_source import EventSourceMapping
    from invoice_archiver.local.lambda_context import LocalContext
    from invoice_archiver.local.pipeline import scheduled_event
    from invoice_archiver.sandbox.dataset import generate
    from invoice_archiver.sandbox.runner import Sandbox
    from invoice_archiver.sandbox.timeline import SandboxClock

    per_period = math.ceil(invoices / (len(ACCOUNTS) * len(PERIODS)))
    dataset = generate(
        seed=8,
        accounts=ACCOUNTS,
        periods=PERIODS,
        invoices_per_account_period=per_period,
        document_size=1024,
        supplemental=(2, 2),
    )
    # moto in a child process, as `run-local` runs it: its DynamoDB Query does not share our GIL.
    sandbox = Sandbox(dataset, clock=SandboxClock(NOW), use_existing_endpoints=False, moto_in_process=False)
    with sandbox as box:
        assert box.emulator is not None
        clients.reset()
        calls: Counter[str] = Counter()

        def count(model: Any, **_: Any) -> None:
            calls[f"{model.service_model.service_name}.{model.name}"] += 1

        clients.botocore_session().register("before-call", count)
        resources.ensure_bucket(BUCKET)
        resources.ensure_table(TABLE)
        queue_url, dlq_url = resources.ensure_queues(QUEUE)
        os.environ.update(
            {
                "ARCHIVE_BUCKET": BUCKET,
                "LEDGER_TABLE": TABLE,
                "INVOICE_QUEUE_URL": queue_url,
                "DEAD_LETTER_QUEUE_URL": dlq_url,
                "ACCOUNT_IDS": ",".join(ACCOUNTS),
                "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
            }
        )
        environment.reset()
        fetcher.context.cache_clear()
        seeded = seed_ledger()
        billed = billed_read_units()

        box.emulator.reset_stats()
        calls.clear()
        started = time.monotonic()
        listing = lister.handler(scheduled_event(NOW), LocalContext("bench-lister"))
        lister_seconds = time.monotonic() - started
        drained = EventSourceMapping(
            clients.sqs(), queue_url, lambda e: fetcher.handler(e, LocalContext("bench-fetcher")), workers=4
        ).drain()
        seconds = time.monotonic() - started

        api = box.emulator.stats.snapshot()["calls"]
        return {
            "invoices": seeded,
            "listed": int(listing["invoices_listed"]),
            "messages_sent": int(listing["messages_sent"]),
            "send_message_batch_calls": calls["sqs.SendMessageBatch"],
            "list_invoice_summaries_calls": api.get("ListInvoiceSummaries", 0),
            "get_invoice_pdf_calls": api.get("GetInvoicePDF", 0),
            "ledger_queries": int(listing["ledger_queries"]),
            "dynamodb_query_requests": calls["dynamodb.Query"],
            "dynamodb_read_units": billed,
            "dynamodb_writes": sum(
                calls[f"dynamodb.{op}"] for op in ("PutItem", "UpdateItem", "BatchWriteItem")
            ),
            "s3_writes": sum(
                n
                for name, n in calls.items()
                if name.split(".")[1].startswith(("Put", "Create", "Upload", "Complete", "Copy"))
                and name.startswith("s3.")
            ),
            "events_put": calls["events.PutEvents"],
            "fetcher_batches": getattr(drained, "batches", 0),
            "lister_seconds": round(lister_seconds, 2),
            "ledger_seconds": float(listing["ledger_seconds"]),
            "seconds": round(seconds, 2),
        }


def seed_ledger() -> int:
    """Every listed invoice ARCHIVED, as the fetcher records it, through the real listing code."""
    from invoice_archiver.dal import clients
    from invoice_archiver.dal import invoicing as invoicing_api
    from invoice_archiver.logic.changes import fingerprint, next_check
    from invoice_archiver.logic.invoice_messages import jsonable, pointer
    from invoice_archiver.logic.planning import SummaryQuery
    from invoice_archiver.models.period import BillingPeriod

    api = clients.invoicing("us-east-1", 3)
    dynamodb = clients.dynamodb()
    items: list[dict[str, Any]] = []
    for account in ACCOUNTS:
        for year, month in PERIODS:
            query = SummaryQuery(account_id=account, billing_period=BillingPeriod(year, month))
            for summary in invoicing_api.iter_summaries(api, query.request()):
                clean = jsonable(summary)  # as the lister fingerprints it and the fetcher archives it
                items.append(ledger_item(pointer(clean), clean, fingerprint(clean), next_check))
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    for start in range(0, len(items), 25):
        batch = [
            {"PutRequest": {"Item": {k: serializer.serialize(v) for k, v in item.items()}}}
            for item in items[start : start + 25]
        ]
        dynamodb.batch_write_item(RequestItems={TABLE: batch})
    return len(items)


def ledger_item(
    message: Any, summary: dict[str, Any], summary_fingerprint: str, next_check: Any
) -> dict[str, Any]:
    folder = f"invoices/account={message.account_id}/period={message.billing_period}/{message.invoice_id}/"
    documents = []
    for kind, doc_id, ext in (
        ("INVOICE", message.invoice_id, "pdf"),
        ("TAX_E_INVOICE", "0f3a9c1e22b4", "xml"),
        ("SUPPLEMENT", "7d21e0aa93c1", "pdf"),
    ):
        name = "invoice.pdf" if kind == "INVOICE" else f"{kind.lower().replace('_', '-')}-{doc_id}.{ext}"
        documents.append(
            {
                "document_type": kind,
                "document_id": doc_id,
                "key": folder + name,
                "content_type": f"application/{ext}",
                "size": Decimal(48_213),
                "sha256": hashlib.sha256(f"{folder}{name}".encode()).hexdigest(),
                "omitted_by_api": [],
                "type_recognized": True,
            }
        )
    issued = datetime.fromisoformat(str(summary["IssuedDate"]))
    at = (issued + timedelta(minutes=5)).isoformat()
    item: dict[str, Any] = {
        "pk": message.account_id,
        "sk": f"{message.billing_period}#{message.invoice_id}",
        "status": "ARCHIVED",
        "attempts": Decimal(1),
        "account_id": message.account_id,
        "invoice_id": message.invoice_id,
        "billing_period": message.billing_period,
        "invoice_type": summary.get("InvoiceType", ""),
        "receiver_role": summary.get("ReceiverRole", ""),
        "documents": documents,
        "summary_key": folder + "summary.json",
        "latest_summary_key": folder + "summary.json",
        "revision": Decimal(0),
        "total_bytes": Decimal(3 * 48_213),
        "document_count": Decimal(3),
        "created_at": at,
        "updated_at": at,
        "archived_at": at,
        "summary_fingerprint": summary_fingerprint,
        "issued_date": str(summary["IssuedDate"]),
    }
    due = next_check(issued, (1, 3, 7, 30), NOW)  # the checks a daily schedule made before NOW are done
    if due is not None:
        item["next_check_at"] = due.isoformat()
    return item


def billed_read_units() -> float:
    """Read units of one eventually consistent Query per account and period, as DynamoDB bills them."""
    import boto3

    table = boto3.resource("dynamodb").Table(TABLE)
    sizes: dict[tuple[str, str], list[int]] = {}
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        for item in page["Items"]:
            place = (str(item["pk"]), str(item["sk"]).split("#", 1)[0])
            sizes.setdefault(place, []).append(item_size(item))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    units = 0.0
    for item_sizes in sizes.values():
        page_bytes = 0
        for size in item_sizes:
            if page_bytes + size > PAGE_BYTES:
                units += math.ceil(page_bytes / 4096) * 0.5
                page_bytes = 0
            page_bytes += size
        units += math.ceil(page_bytes / 4096) * 0.5
    return units


def item_size(value: Any, name: str = "") -> int:
    """DynamoDB's item size rules: attribute names plus values (strings UTF-8, numbers ~digits/2 + 1,
    3 bytes per list or map plus 1 per element, 1 byte per boolean or null)."""
    size = len(name.encode())
    if isinstance(value, dict):
        return (
            size + 3 + sum(item_size(v, k) + 1 for k, v in value.items())
            if name
            else sum(item_size(v, k) for k, v in value.items())
        )
    if isinstance(value, list):
        return size + 3 + sum(item_size(v) + 1 for v in value)
    if isinstance(value, bool) or value is None:
        return size + 1
    if isinstance(value, Decimal | int | float):
        return size + len(str(value).lstrip("-").replace(".", "")) // 2 + 1
    return size + len(str(value).encode())


def report(result: dict[str, Any]) -> None:
    print(
        f"    daily run over {result['invoices']:,} archived, unchanged invoices: "
        f"{result['messages_sent']} messages sent, "
        f"{result['list_invoice_summaries_calls']} ListInvoiceSummaries + "
        f"{result['get_invoice_pdf_calls']} GetInvoicePDF calls, "
        f"{result['ledger_queries']} ledger Queries ({result['dynamodb_read_units']:,.1f} read units), "
        f"{result['dynamodb_writes']} DynamoDB writes, {result['s3_writes']} S3 writes, "
        f"{result['lister_seconds']:.1f} s lister (of which {result['ledger_seconds']:.1f} s reading the "
        f"ledger; {result['seconds']:.1f} s with draining the empty queue)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=10_000, help="archived invoices (default 10000)")
    parser.add_argument("--json", "--result", type=Path, help="also write the result to this file")
    parser.add_argument("--child", action="store_true", help="run by bench/run.py (common.run_child)")
    args = parser.parse_args()
    print(f"[daily] an unchanged daily run over {args.invoices:,} archived invoices")
    result = run(args.invoices)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
