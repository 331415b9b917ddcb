"""Running the functions in this process, on a sandbox or any endpoints: defaults, resources, logs."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from invoice_archiver.cli import resources
from invoice_archiver.cli.api_counters import instrument_clients
from invoice_archiver.cli.errors import CliError
from invoice_archiver.cli.target import LOCAL_DEFAULTS, LOCAL_QUEUE_NAME
from invoice_archiver.config import ConfigError, Settings, load_settings
from invoice_archiver.dal import clients
from invoice_archiver.observability import logger


def has_endpoints() -> bool:
    """True when AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> point somewhere (a sandbox, LocalStack)."""
    return any(name.startswith("AWS_ENDPOINT_URL") and value for name, value in os.environ.items())


def apply_defaults() -> None:
    """run-local's resource names unless configured; fresh clients, counted (throttles, 5xx, retries)."""
    for name, value in LOCAL_DEFAULTS.items():
        os.environ.setdefault(name, value)
    clients.reset()
    instrument_clients()


def provision() -> Settings:
    """Create the bucket, table, queues and DLQ named by the configuration, when missing; then check the
    configuration each function would check at cold start."""
    try:
        settings = load_settings()
        resources.ensure_bucket(settings.archive_bucket)
        resources.ensure_table(settings.ledger_table)
        if not os.environ.get("INVOICE_QUEUE_URL"):
            queue_url, dlq_url = resources.ensure_queues(LOCAL_QUEUE_NAME)
            os.environ["INVOICE_QUEUE_URL"] = queue_url
            os.environ.setdefault("DEAD_LETTER_QUEUE_URL", dlq_url)
        if not os.environ.get("LISTING_QUEUE_URL"):
            os.environ["LISTING_QUEUE_URL"] = resources.ensure_listing_queue(
                f"{LOCAL_QUEUE_NAME}-listing", os.environ.get("DEAD_LETTER_QUEUE_URL", "")
            )
        settings = load_settings()
        load_settings(function="lister")
        load_settings(function="fetcher")
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    return settings


def check_log_file(path: Path) -> None:
    """Refuse a log path that cannot be a file before anything runs."""
    if str(path) in ("", "."):
        raise CliError("--log-file needs a file name")
    if path.is_dir():
        raise CliError(f"--log-file {path}: is a folder; name a file")


def start_log(path: Path) -> None:
    """One log per run: the previous run's log is kept as <name>.1, older ones are dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.replace(path.with_name(path.name + ".1"))
    path.touch()


_SINK: IO[str] | None = None


@contextlib.contextmanager
def logs_to(path: Path) -> Iterator[IO[str]]:
    """Send the functions' JSON logs and EMF metrics to a file, keeping the terminal for the report.

    If the work is interrupted, whatever a worker still logs goes nowhere rather than onto the terminal.
    """
    global _SINK
    handler = logger.registered_handler
    stream_handler = handler if isinstance(handler, logging.StreamHandler) else None
    with path.open("a", encoding="utf-8") as stream, contextlib.redirect_stdout(stream):
        previous = stream_handler.setStream(stream) if stream_handler is not None else None
        try:
            yield stream
        except BaseException:
            if stream_handler is not None:
                _SINK = _SINK or open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives with the process
                stream_handler.setStream(_SINK)
            raise
        if stream_handler is not None and previous is not None:
            stream_handler.setStream(previous)
