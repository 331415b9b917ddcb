"""Running the functions in this process, on a sandbox or any endpoints: defaults, resources, logs."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from invoice_archiver.cli import aws
from invoice_archiver.cli.errors import CliError, config_problem
from invoice_archiver.cli.target import LOCAL_DEFAULTS, LOCAL_QUEUE_NAME
from invoice_archiver.config import ConfigError, Settings, load_settings
from invoice_archiver.dal import clients
from invoice_archiver.local import resources
from invoice_archiver.local.api_counters import instrument_clients
from invoice_archiver.observability import logger


def has_endpoints() -> bool:
    """True when AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> point somewhere (a sandbox, LocalStack)."""
    return any(name.startswith("AWS_ENDPOINT_URL") and value for name, value in os.environ.items())


def apply_defaults() -> None:
    """run-local's resource names unless configured; fresh clients, counted (throttles, 5xx, retries),
    with the command's timeouts."""
    for name, value in LOCAL_DEFAULTS.items():
        os.environ.setdefault(name, value)
    clients.reset()
    aws.configure_clients()
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
        raise CliError(config_problem(str(exc))) from None
    return settings


def check_log_file(path: Path) -> None:
    """Refuse a --log-file that cannot be a writable file before anything runs (only a path the person
    named: the default one in the working folder is never fatal, see FunctionLog)."""
    if str(path) in ("", "."):
        raise CliError("--log-file needs a file name")
    if path == Path(os.devnull):
        return  # the logs are not wanted
    if path.is_dir():
        raise CliError(f"--log-file {path}: is a folder; name a file")
    if path.exists() and not path.is_file():
        raise CliError(f"--log-file {path}: not a regular file")
    existing = next((p for p in (path.absolute().parent, *path.absolute().parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise CliError(f"--log-file {path}: cannot create it in {existing} (not a folder)")
    try:  # a real try, not os.access: a read-only file system refuses even root
        if path.exists():
            path.open("a", encoding="utf-8").close()
        else:
            tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise CliError(f"--log-file {path}: cannot write there ({exc.strerror or exc})") from None


class FunctionLog(io.TextIOBase):
    """The functions' JSON logs and EMF metrics of one run, kept off the terminal.

    The file is created when the first line is written (a run that logs nothing leaves no file); the
    previous run's log is then kept as <name>.1, older ones are dropped. If it cannot be written (a
    read-only working folder, a full disk), that is said once on stderr and the lines are dropped: the
    archive work matters more than its log. Thread-safe: the fetcher's workers log at once.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.problem = ""
        self._stream: IO[str] | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._stream is not None

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            if self.problem:
                return len(text)
            try:
                if self._stream is None:
                    self._stream = self._open()
                self._stream.write(text)
            except OSError as exc:
                self._give_up(exc)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._stream is not None and not self.problem:
                try:
                    self._stream.flush()
                except OSError as exc:
                    self._give_up(exc)

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                with contextlib.suppress(OSError):
                    self._stream.close()
        super().close()

    def describe(self) -> str:
        if self.problem:
            return f"Function logs: not kept ({self.problem})"
        if self._stream is None:
            return "Function logs: none written"
        return f"Function logs: {self.path}"

    def _open(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file():  # never a device (--log-file /dev/null)
            self.path.replace(self.path.with_name(self.path.name + ".1"))
        return self.path.open("w", encoding="utf-8")

    def _give_up(self, exc: OSError) -> None:
        why = (
            "a part of its path is not a folder"
            if isinstance(exc, FileExistsError | NotADirectoryError)
            else ""
        )
        self.problem = f"cannot write {self.path}: {why or exc.strerror or exc}"
        print(f"invoice-archiver: warning: {self.problem}; the functions' logs are dropped", file=sys.stderr)
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()


_SINK: IO[str] | None = None


@contextlib.contextmanager
def logs_to(target: FunctionLog | Path) -> Iterator[FunctionLog]:
    """Send the functions' JSON logs and EMF metrics to `target` (a path: a FunctionLog of it), keeping the
    terminal for the report.

    If the work is interrupted, whatever a worker still logs goes nowhere rather than onto the terminal.
    """
    global _SINK
    log = target if isinstance(target, FunctionLog) else FunctionLog(target)
    handler = logger.registered_handler
    stream_handler = handler if isinstance(handler, logging.StreamHandler) else None
    with contextlib.redirect_stdout(log):
        previous = stream_handler.setStream(log) if stream_handler is not None else None
        try:
            yield log
        except BaseException:
            if stream_handler is not None:
                _SINK = _SINK or open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives with the process
                stream_handler.setStream(_SINK)
            raise
        finally:
            log.flush()
        if stream_handler is not None and previous is not None:
            stream_handler.setStream(previous)
