"""At DEBUG, nothing that could print a pre-signed URL is heard (issue 15, item 8).

An operator chasing a problem sets the functions' log level to DEBUG (POWERTOOLS_LOG_LEVEL, or Lambda's
application log level, which sets the root logger). botocore then logs every request and response body,
GetInvoicePDF's pre-signed URLs included, and urllib3 logs a response with malformed headers with its
full URL. observability.py pins those libraries' loggers above such levels. Here a fault-heavy pass runs
with every logger at DEBUG, everything captured, and no signature may appear anywhere.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import pytest

from invoice_archiver.observability import LIBRARY_LOG_FLOORS, logger, pin_library_loggers
from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.faults import Faults
from tests.integration.conftest import Pipeline, assert_archived

DATASET = generate(seed=6, periods=((2026, 10),), invoices_per_account_period=4, document_size=(1024, 2048))


@pytest.fixture
def everything_at_debug() -> Iterator[io.StringIO]:
    """The root logger and the service's logger at DEBUG, as a DEBUG deployment has them, every record
    of every logger captured; the library loggers' levels restored afterwards."""
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    saved = root.level, logger.log_level, {n: logging.getLogger(n).level for n in LIBRARY_LOG_FLOORS}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logger.setLevel("DEBUG")
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        logger.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def test_a_fault_heavy_pass_at_debug_logs_no_signature_anywhere(
    make_pipeline: Callable[..., Pipeline], everything_at_debug: io.StringIO
) -> None:
    # Given a pipeline whose every logger runs at DEBUG, over an API that throttles, fails, and hands
    # out URLs that expire, drop and truncate
    faults = Faults(
        seed=3,
        throttle_rate=0.2,
        error_rate=0.1,
        expired_url_rate=0.2,
        drop_connection_rate=0.1,
        truncate_rate=0.1,
        retry_after_seconds=0,
    )
    pipeline = make_pipeline(DATASET, faults=faults, env={"DOWNLOAD_ATTEMPTS": "8"})

    # When the month runs through the pipeline
    report = pipeline.run()

    # Then every invoice is archived, the faults happened, DEBUG really was on (our own debug lines and
    # the libraries' records at their floors were captured) ...
    assert (report.archived, report.failed, report.unresolved) == (DATASET.invoice_count, 0, 0)
    assert_archived(pipeline, DATASET.invoices)
    emulator = pipeline.sandbox.emulator
    assert emulator is not None
    stats = emulator.stats.snapshot()
    assert stats["expired_urls"] + stats["dropped"] + stats["truncated"] > 0
    text = everything_at_debug.getvalue() + pipeline.log_text()
    assert text.strip(), "nothing was captured: this check would prove nothing"
    # ... and no captured line holds a pre-signed URL or any signature the emulator issued
    secrets = [*emulator.issued_signatures, *emulator.issued_urls]
    assert secrets
    assert "X-Amz-Signature" not in text
    assert "X-Amz-Credential" not in text
    assert not [s for s in secrets if s in text]


def test_a_library_that_was_set_to_debug_is_pinned_again(everything_at_debug: io.StringIO) -> None:
    # Given botocore and urllib3 turned up to DEBUG (boto3.set_stream_logger, a debugging session)
    for name in ("botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    # When the floors are applied again (at every import of observability), Then each is above its floor
    pin_library_loggers()
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.INFO
    # ... and urllib3's "Failed to parse headers (url=...)" warning, which carries the full URL, is dropped
    logging.getLogger("urllib3.connection").warning(
        "Failed to parse headers (url=%s): %s", "http://127.0.0.1/x?X-Amz-Signature=abc", "bad header"
    )
    assert "X-Amz-Signature" not in everything_at_debug.getvalue()
