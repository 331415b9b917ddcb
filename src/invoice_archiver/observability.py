"""Logger, metrics and tracer: created once here, imported everywhere else.

The tracer is Powertools' only when tracing is on (in Lambda, unless POWERTOOLS_TRACE_DISABLED): the
X-Ray SDK it patches botocore with costs a few hundred milliseconds of every cold start, so a process
that will not trace never imports it. `metrics` takes a lock per metric: the records of a batch are
archived on several threads, and Powertools' metric set is a plain dict.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools import Logger, Metrics

from invoice_archiver.constants import METRICS_NAMESPACE, SERVICE_NAME

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer


class _ThreadSafeMetrics(Metrics):
    _lock = threading.Lock()

    def add_metric(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            super().add_metric(*args, **kwargs)


class _NoTracer:
    """What the handlers use of Powertools' Tracer, doing nothing, for a process that does not trace."""

    def capture_lambda_handler(self, lambda_handler: Any = None, **_: Any) -> Any:
        if lambda_handler is None:
            return lambda handler: handler
        return lambda_handler

    def capture_method(self, method: Any = None, **_: Any) -> Any:
        return self.capture_lambda_handler(method)


def tracing_active(environ: Any = os.environ) -> bool:
    """Powertools' own rule: trace in Lambda (LAMBDA_TASK_ROOT), not in SAM/Chalice local, not when
    POWERTOOLS_TRACE_DISABLED is true."""
    disabled = environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on")
    local = environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE")
    return bool(environ.get("LAMBDA_TASK_ROOT")) and not disabled and not local


def _tracer() -> Tracer:
    if not tracing_active():
        return cast("Tracer", _NoTracer())
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE_NAME)


# Libraries that would print a pre-signed URL (a bearer credential) at some level: botocore and boto3
# at DEBUG (every request's URL and parameters, every response body, GetInvoicePDF's URLs included),
# urllib3 at WARNING (a response with malformed headers is logged with its full URL, query string and
# signature). Each is pinned at a level above that, whatever POWERTOOLS_LOG_LEVEL or the Lambda
# runtime's log level say: their records below it are dropped before any handler sees them.
LIBRARY_LOG_FLOORS = {
    "botocore": logging.INFO,
    "boto3": logging.INFO,
    "s3transfer": logging.INFO,
    "urllib3": logging.ERROR,
}


def pin_library_loggers() -> None:
    """Raise each library logger to at least its floor (a stricter level someone set is kept)."""
    for name, floor in LIBRARY_LOG_FLOORS.items():
        library = logging.getLogger(name)
        library.setLevel(max(library.level, floor))


pin_library_loggers()
logger = Logger(service=SERVICE_NAME, utc=True)
metrics = _ThreadSafeMetrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = _tracer()
