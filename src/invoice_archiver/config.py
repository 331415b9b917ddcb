"""Configuration: every environment variable the functions read, parsed once into a typed model.

`ENV_VARS` is the single source of truth for the variable names. The CDK stack builds each
function's environment from it and the README's configuration reference documents it; a test
checks that all three agree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from invoice_archiver.constants import DEFAULT_INVOICING_REGION, RECEIVER_ROLES
from invoice_archiver.models.source import EXTERNAL_ID, Source, parse_sources

Function = Literal["lister", "fetcher", "reconciler"]


@dataclass(frozen=True)
class EnvVar:
    name: str
    field: str
    functions: tuple[Function, ...]
    required: bool
    doc: str


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "ARCHIVE_BUCKET",
        "archive_bucket",
        ("fetcher", "reconciler"),
        True,
        "S3 bucket that receives the archive.",
    ),
    EnvVar(
        "ARCHIVE_PREFIX",
        "archive_prefix",
        ("fetcher", "reconciler"),
        False,
        "Key prefix of the archive inside the bucket (default `invoices`).",
    ),
    EnvVar(
        "LEDGER_TABLE",
        "ledger_table",
        ("lister", "fetcher", "reconciler"),
        True,
        "DynamoDB table that records the state of every invoice (the lister reads it: what is unchanged).",
    ),
    EnvVar(
        "INVOICE_QUEUE_URL",
        "invoice_queue_url",
        ("lister",),
        True,
        "SQS queue the lister sends one message per invoice to.",
    ),
    EnvVar(
        "LISTING_QUEUE_URL",
        "listing_queue_url",
        ("lister",),
        False,
        "SQS queue a listing that outgrows its invocation continues through (the lister consumes it); "
        "empty: a listing runs to the end of its invocation.",
    ),
    EnvVar(
        "LISTING_RESERVE_SECONDS",
        "listing_reserve_seconds",
        ("lister",),
        False,
        "With fewer seconds than this left of its invocation, the lister stops between pages and hands "
        "the rest of the listing to LISTING_QUEUE_URL (default 60).",
    ),
    EnvVar(
        "DEAD_LETTER_QUEUE_URL",
        "dead_letter_queue_url",
        ("lister", "fetcher"),
        False,
        "Where the lister sends a summary it cannot enqueue and the fetcher a malformed message, each with "
        "its reason; empty: the lister logs and counts it, and SQS redrives the fetcher's.",
    ),
    EnvVar(
        "ACCOUNT_IDS",
        "account_ids",
        ("lister", "fetcher", "reconciler"),
        False,
        "Comma-separated 12-digit account ids to archive, read with the function's own credentials "
        "(default: the account the functions run in). The fetcher archives no other account.",
    ),
    EnvVar(
        "RECEIVER_ROLES",
        "receiver_roles",
        ("lister",),
        False,
        "Comma-separated receiver roles (SELLER, RESELLER, BUYER); empty: no ReceiverRole filter.",
    ),
    EnvVar(
        "SOURCE_ROLE_ARNS",
        "source_role_arns",
        ("lister", "fetcher", "reconciler"),
        False,
        "Comma-separated sources read through a role: `<role-arn>` archives the role's own account, "
        "`<account-id>=<role-arn>` that account through a role in its payer (an invoice-unit receiver).",
    ),
    EnvVar(
        "SOURCE_EXTERNAL_ID",
        "source_external_id",
        ("lister", "fetcher"),
        False,
        "ExternalId sent when assuming the SOURCE_ROLE_ARNS roles (the payer role's `sts:ExternalId`).",
    ),
    EnvVar(
        "DISCOVER_INVOICE_UNITS",
        "discover_invoice_units",
        ("lister", "fetcher"),
        False,
        "`true`: the lister calls ListInvoiceUnits in each source and archives each unit's receiver account "
        "(the fetcher checks a message's receiver the same way).",
    ),
    EnvVar(
        "LOOKBACK_PERIODS",
        "lookback_periods",
        ("lister",),
        False,
        "Billing periods before the last complete one that each scheduled run lists again (default 2).",
    ),
    EnvVar(
        "INVOICING_REGION",
        "invoicing_region",
        ("lister", "fetcher"),
        False,
        "Region of the AWS Invoicing API endpoint (default us-east-1).",
    ),
    EnvVar(
        "LEASE_SECONDS",
        "lease_seconds",
        ("fetcher",),
        False,
        "How long a fetcher's claim on an invoice lasts before another delivery may take it over.",
    ),
    EnvVar(
        "DOWNLOAD_ATTEMPTS",
        "download_attempts",
        ("fetcher",),
        False,
        "Downloads tried per document, each with fresh pre-signed URLs, before the invoice is retried later.",
    ),
    EnvVar(
        "INVOICING_MAX_ATTEMPTS",
        "invoicing_max_attempts",
        ("lister", "fetcher"),
        False,
        "SDK attempts per Invoicing API call (throttling and 5xx are retried with backoff and jitter).",
    ),
    EnvVar(
        "MULTIPART_THRESHOLD_BYTES",
        "multipart_threshold_bytes",
        ("fetcher",),
        False,
        "Documents larger than this are uploaded with a multipart upload (default 16 MiB).",
    ),
    EnvVar(
        "MAX_DOCUMENT_BYTES",
        "max_document_bytes",
        ("fetcher",),
        False,
        "Largest document the fetcher downloads, by its declared length (default 2 GiB); a larger one is "
        "refused before its body is read, and the invoice recorded FAILED with the reason.",
    ),
    EnvVar(
        "SPOOL_DIRECTORY",
        "spool_directory",
        ("fetcher",),
        False,
        "Where a document is spooled between download and upload (default: the system temp dir, /tmp).",
    ),
    EnvVar(
        "DOCUMENT_HOST_SUFFIXES",
        "document_host_suffixes",
        ("fetcher",),
        False,
        "Comma-separated host suffixes pre-signed URLs may point to (default `.amazonaws.com`).",
    ),
    EnvVar(
        "ALLOW_LOOPBACK_DOCUMENT_URLS",
        "allow_loopback_document_urls",
        ("fetcher",),
        False,
        "Local mode only: also accept http:// URLs on 127.0.0.1/localhost (the sandbox). Never set in AWS.",
    ),
    EnvVar(
        "REVISIT_DAYS",
        "revisit_days",
        ("fetcher",),
        False,
        "Days after an invoice's issue date on which it is checked again for late documents "
        "(default `1,3,7,30`; `none`: never).",
    ),
    EnvVar(
        "EVENT_BUS_NAME",
        "event_bus_name",
        ("fetcher",),
        False,
        "EventBridge bus that receives `Invoice Archived` and `Invoice Revised` (default `default`).",
    ),
    EnvVar(
        "MISSING_INVOICE_DAY",
        "missing_invoice_day",
        ("lister",),
        False,
        "From this day of the month, a configured account without an invoice for the last complete "
        "billing period is counted in `AccountsWithoutInvoice` (default 10).",
    ),
    EnvVar(
        "UNSETTLED_AFTER_DAYS",
        "unsettled_after_days",
        ("lister",),
        False,
        "An invoice still unsettled (not ARCHIVED with its event sent, nor FAILED for good) this many days "
        "after it was first claimed is counted in `InvoicesUnsettled`, which is alarmed (default 3).",
    ),
    EnvVar(
        "INVOICING_RATE_LIMIT",
        "invoicing_rate_limit",
        ("lister", "fetcher"),
        False,
        "Most Invoicing API calls per second per operation this process makes (0: no ceiling, back off on "
        "throttling only). Deployed: for each fetcher the account's limit divided by the fetcher's maximum "
        "concurrency; for the lister, the only caller of ListInvoiceSummaries, the whole limit.",
    ),
    EnvVar(
        "FETCHER_CONCURRENCY",
        "fetcher_concurrency",
        ("fetcher",),
        False,
        "Records of one SQS batch archived at the same time, on threads (default 4; 1: one at a time).",
    ),
    EnvVar(
        "COST_DATA_EXPORT",
        "cost_data_export",
        ("reconciler",),
        True,
        "The Data Exports export (CUR 2.0 or FOCUS 1.2) the archive is reconciled with: "
        "`s3://bucket/prefix/` at the export or above it (docs/reconciliation.md).",
    ),
    EnvVar(
        "RECONCILIATION_TOLERANCE",
        "reconciliation_tolerance",
        ("reconciler",),
        False,
        "Largest difference between an invoice and its cost data still matched, in the invoice's currency "
        "(default: one unit of the invoice's last decimal place, 0.01 for USD).",
    ),
)

_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_S3_LOCATION = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](?:/(?P<prefix>.*))?$")


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[tuple[str, ...], BeforeValidator(_split_csv)]
MAX_REVISIT_DAY = 400


def _sources(value: object) -> object:
    if isinstance(value, str):
        value = _split_csv(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return parse_sources(tuple(value))
    return value


SourceList = Annotated[tuple[Source, ...], BeforeValidator(_sources)]


def _revisit_days(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() == "none":
        return ()
    return _split_csv(value)


DayList = Annotated[tuple[int, ...], BeforeValidator(_revisit_days)]


class Settings(BaseModel):
    """Parsed configuration. Fields are optional here; each function checks what it needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    archive_bucket: str = ""
    archive_prefix: str = "invoices"
    ledger_table: str = ""
    invoice_queue_url: str = ""
    listing_queue_url: str = ""
    listing_reserve_seconds: float = Field(default=60.0, ge=0.0, le=840.0)
    dead_letter_queue_url: str = ""
    account_ids: CsvList = ()
    receiver_roles: CsvList = ()
    source_role_arns: SourceList = ()
    source_external_id: str = ""
    discover_invoice_units: bool = False
    lookback_periods: int = Field(default=2, ge=0, le=60)
    invoicing_region: str = DEFAULT_INVOICING_REGION
    lease_seconds: int = Field(default=900, ge=5, le=43_200)
    download_attempts: int = Field(default=4, ge=1, le=10)
    invoicing_max_attempts: int = Field(default=8, ge=1, le=20)
    multipart_threshold_bytes: int = Field(default=16 * 1024 * 1024, ge=5 * 1024 * 1024)
    max_document_bytes: int = Field(default=2 * 1024**3, ge=1024 * 1024)
    spool_directory: str = ""
    document_host_suffixes: CsvList = (".amazonaws.com",)
    allow_loopback_document_urls: bool = False
    invoicing_rate_limit: float = Field(default=0.0, ge=0.0, le=10_000.0)
    fetcher_concurrency: int = Field(default=4, ge=1, le=10)
    revisit_days: DayList = (1, 3, 7, 30)
    event_bus_name: str = Field(default="default", pattern=r"^[A-Za-z0-9._\-/:]{1,1600}$")
    missing_invoice_day: int = Field(default=10, ge=1, le=28)
    unsettled_after_days: int = Field(default=3, ge=1, le=365)
    cost_data_export: str = ""
    reconciliation_tolerance: Decimal | None = Field(default=None, ge=0)

    @field_validator("account_ids")
    @classmethod
    def _accounts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not _ACCOUNT_ID.match(v)]
        if bad:
            raise ValueError(f"not 12-digit account ids: {', '.join(bad)}")
        return tuple(dict.fromkeys(value))

    @field_validator("receiver_roles")
    @classmethod
    def _roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        upper = tuple(dict.fromkeys(v.upper() for v in value))
        bad = [v for v in upper if v not in RECEIVER_ROLES]
        if bad:
            raise ValueError(f"unknown receiver roles {', '.join(bad)}; use {', '.join(RECEIVER_ROLES)}")
        return upper

    @field_validator("revisit_days")
    @classmethod
    def _days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(day < 1 or day > MAX_REVISIT_DAY for day in value):
            raise ValueError(f"days after issue must lie between 1 and {MAX_REVISIT_DAY}")
        return tuple(sorted(set(value)))

    @field_validator("source_external_id")
    @classmethod
    def _external_id(cls, value: str) -> str:
        if value and not EXTERNAL_ID.match(value):
            raise ValueError("must be 2-1224 characters of A-Z a-z 0-9 and _+=,.@:/- (an sts:ExternalId)")
        return value

    @field_validator("source_role_arns")
    @classmethod
    def _sources_apart_from_accounts(
        cls, value: tuple[Source, ...], info: ValidationInfo
    ) -> tuple[Source, ...]:
        both = sorted({s.account_id for s in value} & set(info.data.get("account_ids", ())))
        if both:
            raise ValueError(
                f"{', '.join(both)} also in ACCOUNT_IDS; an account is read either with the function's own "
                "credentials (ACCOUNT_IDS) or through a role (SOURCE_ROLE_ARNS), not both"
            )
        return value

    @field_validator("cost_data_export")
    @classmethod
    def _export(cls, value: str) -> str:
        match = _S3_LOCATION.match(value.strip())
        if value and (match is None or ".." in (match["prefix"] or "").split("/")):
            raise ValueError("must be s3://bucket/prefix/ (the Data Exports export, or a prefix above it)")
        return value.strip()

    @field_validator("archive_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip("/")
        if not value or ".." in value.split("/"):
            raise ValueError("must be a non-empty key prefix without '..' segments")
        return value

    @field_validator("document_host_suffixes")
    @classmethod
    def _suffixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must name at least one host suffix")
        return tuple("." + v.lower().lstrip(".") for v in value)


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


_BY_FIELD = {var.field: var for var in ENV_VARS}


def load_settings(environ: Mapping[str, str] | None = None, *, function: Function | None = None) -> Settings:
    """Parse the environment into Settings, failing with a message that names each bad variable."""
    env = os.environ if environ is None else environ
    raw = {var.field: env[var.name] for var in ENV_VARS if env.get(var.name, "") != ""}
    try:
        settings = Settings(**raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = _BY_FIELD[field].name if field in _BY_FIELD else field
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    if function is not None:
        missing = [
            v.name for v in ENV_VARS if v.required and function in v.functions and not raw.get(v.field)
        ]
        if missing:
            raise ConfigError(f"missing configuration for the {function}: set {', '.join(missing)}")
    if function == "fetcher" and settings.spool_directory:
        _check_spool_directory(settings.spool_directory)
    return settings


def _check_spool_directory(path: str) -> None:
    """Cold start, not the first large document, finds out that SPOOL_DIRECTORY cannot be used."""
    if not os.path.isdir(path):
        raise ConfigError(f"invalid configuration: SPOOL_DIRECTORY: {path} is not an existing directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"invalid configuration: SPOOL_DIRECTORY: {path} is not writable")


def env_var_names(function: Function) -> list[str]:
    """The variables one function reads (used by the CDK stack and its tests)."""
    return [var.name for var in ENV_VARS if function in var.functions]
