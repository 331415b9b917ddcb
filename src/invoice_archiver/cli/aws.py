"""The command line's side of the AWS SDK: the region a person sets, endpoint variables that are URLs, and
short timeouts, so a stale sandbox or a dead endpoint ends in one line instead of minutes of silence.

* AWS_REGION is honoured: boto3 reads only AWS_DEFAULT_REGION (and the profile), the AWS CLI v2 and the
  other SDKs read AWS_REGION first. The command does what the AWS CLI does: AWS_REGION wins.
* Every AWS_ENDPOINT_URL* variable must be an http(s) URL with a host; anything else is named.
* Every client the command creates (the functions' code run here included) gets CONNECT_SECONDS to
  connect and READ_SECONDS per read; the SDK's retries still apply (AWS_MAX_ATTEMPTS, 3 by default), so
  an endpoint that accepts connections and never answers ends in about a minute with "endpoint not
  answering". The one long call, a synchronous invocation of the stack's lister, has its own client.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from botocore.config import Config

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

    clients.botocore_session().set_default_client_config(
        Config(connect_timeout=CONNECT_SECONDS, read_timeout=READ_SECONDS)
    )


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
