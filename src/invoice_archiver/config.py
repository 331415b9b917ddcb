"""Configuration: every environment variable the functions read (env_vars.ENV_VARS), parsed once into a
typed model, Settings, with one clear error for a bad value."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated

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
from invoice_archiver.env_vars import ENV_VARS, Function
from invoice_archiver.models.source import EXTERNAL_ID, Source, parse_sources

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
