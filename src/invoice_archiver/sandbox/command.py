"""``invoice-archiver sandbox``: run moto and the Invoicing emulator until interrupted.

Prints the ``export`` lines first (flushed, so a parent process can read them from a pipe), then what
the dataset holds, then waits for Ctrl-C or SIGTERM and stops cleanly (exit code 0).
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from invoice_archiver.sandbox.dataset import Dataset, default_dataset, generate
from invoice_archiver.sandbox.faults import Faults
from invoice_archiver.sandbox.runner import Sandbox


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="run moto + the AWS Invoicing API emulator locally",
        description="Run moto (S3, SQS, DynamoDB, EventBridge, STS) and the Invoicing emulator on loopback.",
    )
    data = parser.add_argument_group("dataset")
    data.add_argument("--dataset", metavar="PATH", help="JSON scenario file (see docs/sandbox.md)")
    data.add_argument("--seed", type=int, help="generate a dataset with this seed")
    data.add_argument("--accounts", type=_csv, help="comma-separated 12-digit account ids")
    data.add_argument(
        "--periods", type=_periods, help="comma-separated billing periods, e.g. 2026-09,2026-10"
    )
    data.add_argument("--invoices-per-period", type=int, help="invoices per account and billing period")
    data.add_argument("--document-size", type=int, help="size in bytes of every PDF document")
    faults = parser.add_argument_group("faults")
    for name in ("throttle-rate", "error-rate", "expired-url-rate", "drop-connection-rate", "truncate-rate"):
        faults.add_argument(f"--{name}", type=float, default=0.0, metavar="SHARE", help="0.0 to 1.0")
    faults.add_argument("--tps-limit", type=int, help="max API calls per second per operation")
    faults.add_argument("--fault-seed", type=int, default=0)
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1")
    net.add_argument("--port", type=int, default=0, help="moto port (default: a free port)")
    net.add_argument("--invoicing-port", type=int, default=0, help="emulator port (default: a free port)")
    net.add_argument("--url-lifetime", type=int, default=3600, help="pre-signed URL lifetime in seconds")
    parser.set_defaults(run=run)
    return parser


def build_dataset(args: argparse.Namespace) -> Dataset:
    if args.dataset:
        return Dataset.load(args.dataset)
    params: dict[str, Any] = {
        "seed": args.seed,
        "accounts": args.accounts,
        "periods": args.periods,
        "invoices_per_account_period": args.invoices_per_period,
        "document_size": args.document_size,
    }
    given = {k: v for k, v in params.items() if v is not None}
    return generate(**given) if given else default_dataset()


def build_faults(args: argparse.Namespace) -> Faults:
    return Faults(
        seed=args.fault_seed,
        throttle_rate=args.throttle_rate,
        error_rate=args.error_rate,
        tps_limit={"*": args.tps_limit} if args.tps_limit else {},
        expired_url_rate=args.expired_url_rate,
        drop_connection_rate=args.drop_connection_rate,
        truncate_rate=args.truncate_rate,
    )


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        box = Sandbox(
            build_dataset(args),
            faults=build_faults(args),
            url_lifetime_seconds=args.url_lifetime,
            host=args.host,
            moto_port=args.port,
            invoicing_port=args.invoicing_port,
            use_existing_endpoints=False,
        )
        with box:
            for line in box.export_lines():
                print(line, flush=True)
            print(f"# dataset: {box.dataset.describe()}", flush=True)
            print("# sandbox ready; Ctrl-C to stop", flush=True)
            while not stop.wait(0.2):
                pass
        print("# sandbox stopped", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _periods(value: str) -> list[tuple[int, int]]:
    periods = []
    for item in _csv(value):
        year, month = item.split("-")
        periods.append((int(year), int(month)))
    return periods
