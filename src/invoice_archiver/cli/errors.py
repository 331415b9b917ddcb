"""Exit codes, and one line instead of a traceback for the mistakes a person can fix.

    0    the command did what was asked and found nothing wrong
    1    invoices failed, are stuck, queued with nothing working on them or in the DLQ; verify found
         problems; verify or report matched nothing
    2    a usage or configuration error: a bad option, a missing stack, table or bucket, no credentials,
         a broken AWS configuration, an endpoint that does not answer, a file or disk that cannot be written
    130  interrupted (Ctrl-C)
    141  the reader of stdout went away (`| head`): the rest of the output is dropped, without a message

Unknown exceptions keep their traceback: they are bugs, and the traceback is what a bug report needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)
from pydantic import ValidationError

OK = 0
PROBLEMS = 1
USAGE = 2
INTERRUPTED = 130
READER_GONE = 141

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


@contextmanager
def named_resources(*, table: str = "", bucket: str = "") -> Iterator[None]:
    """A ledger `table` or `bucket` missing on this endpoint, said in one line with what to set."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if table and code == "ResourceNotFoundException":
            raise CliError(
                f"ledger table {table!r} not found ({endpoint_hint()}): "
                "pass --stack NAME or set LEDGER_TABLE (on a sandbox, run-local creates it)"
            ) from None
        if bucket and code == "NoSuchBucket":
            raise CliError(
                f"bucket {bucket!r} not found ({endpoint_hint()}): "
                "pass --stack NAME or set ARCHIVE_BUCKET (on a sandbox, run-local creates it)"
            ) from None
        raise


def endpoint_hint(service: str | None = None) -> str:
    """Where requests (of `service`, if known) go: the endpoint variable that applies, or AWS."""
    if service:
        name = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
        if os.environ.get(name):
            return f"{name}={os.environ[name]}"
    url = os.environ.get("AWS_ENDPOINT_URL")
    if url:
        return f"AWS_ENDPOINT_URL={url}"
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "the default region"
    return f"AWS ({region})"


def config_problem(text: str) -> str:
    """A configuration error's text without pydantic's "Value error, " prefix."""
    return text.replace("Value error, ", "")


def explain(exc: BaseException) -> CliError | None:
    """The one-line form of an exception a person caused or can fix; None for a bug."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, ClientError):
        return _client_error(exc)
    if isinstance(exc, BotoCoreError):
        return _botocore_error(exc)
    if isinstance(exc, ValidationError):
        return CliError("; ".join(_pydantic_problem(error) for error in exc.errors()))
    if isinstance(exc, ValueError) and str(exc).startswith("Invalid endpoint:"):
        return CliError(_invalid_endpoint(str(exc).partition(":")[2].strip()))
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return CliError(f"{where}{exc.strerror or exc}")
    return None


def _botocore_error(exc: BotoCoreError) -> CliError:
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CliError(
            "no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or export the "
            "lines `invoice-archiver sandbox` prints (run-local's own sandbox stops when run-local exits)"
        )
    if isinstance(exc, SSOError | TokenRetrievalError | CredentialRetrievalError):
        return CliError(f"the AWS credentials cannot be loaded: {exc} (refresh them, e.g. `aws sso login`)")
    url = str(getattr(exc, "kwargs", {}).get("endpoint_url", "")) or endpoint_hint()
    if isinstance(exc, ReadTimeoutError):
        return CliError(
            f"endpoint not answering: {url} accepted the connection but sent no answer in time; is the "
            "sandbox stuck, or the endpoint variable wrong? (unset AWS_ENDPOINT_URL* to use AWS)"
        )
    if isinstance(exc, EndpointConnectionError):  # ConnectTimeoutError too
        return CliError(
            f"cannot reach {url}: is the sandbox still running? Start `invoice-archiver sandbox` and export "
            "its lines again, or unset AWS_ENDPOINT_URL* to use AWS"
        )
    if isinstance(exc, ConnectionClosedError | HTTPClientError):
        return CliError(f"{exc} ({endpoint_hint()}); try again", code=PROBLEMS)
    if isinstance(exc, NoRegionError):
        return CliError(
            "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION (the stack's region, us-east-1 by default)"
        )
    if isinstance(exc, ProfileNotFound):
        return CliError(f"{exc}: check AWS_PROFILE (and AWS_CONFIG_FILE)")
    # The rest is the SDK's configuration or a value it refuses (a malformed ~/.aws/config, a region
    # that is not one, AWS_MAX_ATTEMPTS=abc, a bucket name S3 cannot take): the person can fix it.
    return CliError(f"AWS configuration: {exc}".replace("\n", " "))


def _invalid_endpoint(value: str) -> str:
    names = sorted(n for n, v in os.environ.items() if n.startswith("AWS_ENDPOINT_URL") and v == value)
    where = " or ".join(names) or "an endpoint variable"
    return f"{where}={value} is not a URL: use http(s)://HOST[:PORT], or unset it to use AWS"


@cache
def _invoicing_operations() -> frozenset[str]:
    """The Invoicing API's operation names, from the SDK's own model (its errors name its endpoint)."""
    from invoice_archiver.dal import clients

    try:
        return frozenset(clients.botocore_session().get_service_model("invoicing").operation_names)
    except Exception:  # an SDK without the model: the client could not have been created either
        return frozenset()


def _client_error(exc: ClientError) -> CliError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Error"))
    message = str(error.get("Message", "")).strip() or code
    operation = getattr(exc, "operation_name", "the call")
    where = endpoint_hint("invoicing" if operation in _invoicing_operations() else None)
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
    message = config_problem(str(error.get("msg", "")))
    return f"{location}: {message}" if location else message
