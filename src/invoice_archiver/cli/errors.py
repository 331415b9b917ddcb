"""Exit codes, and one line instead of a traceback for the mistakes a person can fix.

    0    the command did what was asked and found nothing wrong
    1    invoices failed, are stuck or in the DLQ, or verify found problems
    2    a usage or configuration error: a bad option, a missing stack or table, no credentials,
         an endpoint that does not answer
    130  interrupted (Ctrl-C)

Unknown exceptions keep their traceback: they are bugs, and the traceback is what a bug report needs.
"""

from __future__ import annotations

import os

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from pydantic import ValidationError

OK = 0
PROBLEMS = 1
USAGE = 2
INTERRUPTED = 130

_TRANSIENT = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "InternalServerException",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


class CliError(Exception):
    """What went wrong, in one line that names what to fix; `code` is the exit code."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def endpoint_hint() -> str:
    """Where requests go: the sandbox's endpoint variables, or AWS."""
    url = os.environ.get("AWS_ENDPOINT_URL")
    if url:
        return f"AWS_ENDPOINT_URL={url}"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "the default region"
    return f"AWS ({region})"


def explain(exc: BaseException) -> CliError | None:
    """The one-line form of an exception a person caused or can fix; None for a bug."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CliError(
            "no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or export the "
            "lines `invoice-archiver sandbox` prints (run-local's own sandbox stops when run-local exits)"
        )
    if isinstance(exc, EndpointConnectionError):
        url = str(getattr(exc, "kwargs", {}).get("endpoint_url", "")) or endpoint_hint()
        return CliError(
            f"cannot reach {url}: is the sandbox still running? Start `invoice-archiver sandbox` and export "
            "its lines again, or unset AWS_ENDPOINT_URL* to use AWS"
        )
    if isinstance(exc, NoRegionError):
        return CliError("no AWS region: set AWS_REGION (the stack's region, us-east-1 by default)")
    if isinstance(exc, ProfileNotFound):
        return CliError(f"{exc}: check AWS_PROFILE")
    if isinstance(exc, ClientError):
        return _client_error(exc)
    if isinstance(exc, BotoCoreError):
        return CliError(f"{exc} ({endpoint_hint()})", code=PROBLEMS)
    if isinstance(exc, ValidationError):
        return CliError("; ".join(_pydantic_problem(error) for error in exc.errors()))
    return None


def _client_error(exc: ClientError) -> CliError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Error"))
    message = str(error.get("Message", "")).strip() or code
    operation = getattr(exc, "operation_name", "the call")
    where = endpoint_hint()
    if code in _TRANSIENT or code.startswith("5"):
        return CliError(
            f"{operation} kept failing after the SDK's retries ({code}: {message}; {where}); try again later",
            code=PROBLEMS,
        )
    if code in {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}:
        return CliError(f"the AWS credentials have expired ({code}): refresh them, e.g. `aws sso login`")
    if code in {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}:
        return CliError(f"the AWS credentials were refused ({code}; {where}): check AWS_PROFILE")
    if code in {"AccessDenied", "AccessDeniedException", "403"}:
        return CliError(f"access denied to {operation} ({where}): {message}")
    return CliError(f"{operation} failed ({code}: {message}; {where})")


def _pydantic_problem(error: object) -> str:
    assert isinstance(error, dict)
    location = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message
