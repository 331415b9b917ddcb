"""The command line's side of the AWS SDK: the region a person sets, endpoint variables that are URLs, and
short timeouts, so a stale sandbox or a dead endpoint ends in one line instead of minutes of silence.

* AWS_REGION is honoured: boto3 reads only AWS_DEFAULT_REGION (and the profile), the AWS CLI v2 and the
  other SDKs read AWS_REGION first. The command does what the AWS CLI does: AWS_REGION wins.
* Every AWS_ENDPOINT_URL* variable must be an http(s) URL with a host; anything else is named.
* Every client the command creates (the functions' code run here included) gets CONNECT_SECONDS to
  connect and READ_SECONDS per read; the SDK's retries still apply (AWS_MAX_ATTEMPTS, 3 by default), so
  an endpoint that accepts connections and never answers ends in about 45 s with "endpoint not
  answering", and each attempt that timed out before the last says so on stderr (never silence). The one
  long call, a synchronous invocation of the stack's lister, has its own client.
"""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from invoice_archiver.cli.errors import CliError

CONNECT_SECONDS = 5
READ_SECONDS = 15
RETRY_MODES = ("standard", "adaptive", "legacy")


def prepare() -> None:
    """Check and normalise the AWS variables, then set the timeouts; call before any client exists."""
    region = os.environ.get("AWS_REGION", "").strip()
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    for name, value in sorted(os.environ.items()):
        if name.startswith("AWS_ENDPOINT_URL") and value and not _is_url(value):
            raise CliError(f"{name}={value} is not a URL: use http(s)://HOST[:PORT], or unset it to use AWS")
    attempts = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
    if attempts and not (attempts.isdigit() and int(attempts) >= 1):
        raise CliError(f"AWS_MAX_ATTEMPTS={attempts} is not a whole number of at least 1")
    mode = os.environ.get("AWS_RETRY_MODE", "").strip()
    if mode and mode not in RETRY_MODES:
        raise CliError(f"AWS_RETRY_MODE={mode} is not one of {', '.join(RETRY_MODES)}")
    configure_clients()


def configure_clients() -> None:
    """Short connect and read timeouts for every client created from now on (call again after
    `clients.reset()`, which starts a new SDK session)."""
    from invoice_archiver.dal import clients

    session = clients.botocore_session()
    session.set_default_client_config(Config(connect_timeout=CONNECT_SECONDS, read_timeout=READ_SECONDS))
    session.register("needs-retry", note_timeout, unique_id="invoice-archiver-timeout-note")


def note_timeout(
    attempts: int = 0,
    caught_exception: BaseException | None = None,
    request_dict: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """botocore's needs-retry event: an attempt that timed out, and is not the last, is said on stderr.
    Returns None: the SDK's own retry handler decides."""
    if not isinstance(caught_exception, ReadTimeoutError | ConnectTimeoutError):
        return
    context: dict[str, Any] = (request_dict or {}).get("context", {})
    most = int((context.get("retries") or {}).get("max", 0))
    if attempts < most:
        url = getattr(caught_exception, "kwargs", {}).get("endpoint_url", "the endpoint")
        what = "sent no answer" if isinstance(caught_exception, ReadTimeoutError) else "did not connect"
        seconds = READ_SECONDS if isinstance(caught_exception, ReadTimeoutError) else CONNECT_SECONDS
        print(
            f"invoice-archiver: {url} {what} in {seconds} s; trying again ({attempts + 1} of {most})",
            file=sys.stderr,
            flush=True,
        )


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
