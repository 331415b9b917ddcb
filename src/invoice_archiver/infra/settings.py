"""Deployment settings: every CDK context key the stack reads, parsed and validated once.

A key comes from `cdk.json` ("context") or from `-c key=value` on the command line (which wins).
Values given with `-c` are strings, so the model accepts "true", "300" and comma-separated lists.
A bad value stops the synth with a message that names the key.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from invoice_archiver.config import CsvList, DayList, Settings  # CsvList: `-c key=a,b` or a JSON list
from invoice_archiver.constants import MAX_RECEIVE_COUNT
from invoice_archiver.infra.constants import (
    DEFAULT_REGION,
    DEFAULT_STACK_NAME,
    MAX_ROLE_NAME,
    VISIBILITY_TIMEOUT_FACTOR,
    function_role_name,
)
from invoice_archiver.models.source import parse_sources, role_arns

_FUNCTION_DEFAULTS = Settings()

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
ARCHIVE_STORAGE_CLASSES = Literal["GLACIER_INSTANT_RETRIEVAL", "GLACIER", "DEEP_ARCHIVE"]

_SCHEDULE = re.compile(r"^(cron\(\S+( \S+){5}\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ACCOUNT = re.compile(r"^\d{12}$")


class DeploySettings(BaseModel):
    """The stack's configuration. Field names are the context keys; see docs/deploy.md."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Where and what
    stack_name: str = Field(default=DEFAULT_STACK_NAME, pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
    account: str = ""
    region: str = Field(default=DEFAULT_REGION, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")

    # What the lister archives (passed to the functions; validated by invoice_archiver.config.Settings)
    account_ids: CsvList = ()
    receiver_roles: CsvList = ()
    # Sources read through a role (SOURCE_ROLE_ARNS entries); the functions may assume exactly these roles.
    source_role_arns: CsvList = ()
    source_external_id: str = _FUNCTION_DEFAULTS.source_external_id
    discover_invoice_units: bool = _FUNCTION_DEFAULTS.discover_invoice_units
    lookback_periods: int = _FUNCTION_DEFAULTS.lookback_periods
    archive_prefix: str = _FUNCTION_DEFAULTS.archive_prefix
    document_host_suffixes: CsvList = _FUNCTION_DEFAULTS.document_host_suffixes
    download_attempts: int = _FUNCTION_DEFAULTS.download_attempts
    invoicing_max_attempts: int = _FUNCTION_DEFAULTS.invoicing_max_attempts
    multipart_threshold_bytes: int = _FUNCTION_DEFAULTS.multipart_threshold_bytes
    max_document_bytes: int = _FUNCTION_DEFAULTS.max_document_bytes
    lease_seconds: int | None = Field(default=None, ge=1)
    revisit_days: DayList = _FUNCTION_DEFAULTS.revisit_days
    event_bus_name: str = _FUNCTION_DEFAULTS.event_bus_name
    missing_invoice_day: int = _FUNCTION_DEFAULTS.missing_invoice_day
    unsettled_after_days: int = _FUNCTION_DEFAULTS.unsettled_after_days
    listing_reserve_seconds: float = _FUNCTION_DEFAULTS.listing_reserve_seconds

    # Schedule: daily (incremental runs are cheap: unchanged invoices cost one ledger read each)
    schedule_expression: str = "cron(0 6 * * ? *)"
    schedule_enabled: bool = True
    schedule_retry_attempts: int = Field(default=4, ge=0, le=185)
    schedule_max_event_age_hours: int = Field(default=6, ge=1, le=24)

    # Functions
    powertools_layer_version: int = Field(default=38, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_retention_days: int = 90
    # X-Ray active tracing on both functions; off also spares each cold start the X-Ray SDK's import.
    tracing_enabled: bool = True
    lister_timeout_seconds: int = Field(default=600, ge=30, le=900)
    lister_memory_mb: int = Field(default=256, ge=128, le=10_240)
    fetcher_timeout_seconds: int = Field(default=300, ge=30, le=900)
    fetcher_memory_mb: int = Field(default=1024, ge=128, le=10_240)
    fetcher_ephemeral_storage_mib: int = Field(default=2048, ge=512, le=10_240)
    fetcher_batch_size: int = Field(default=10, ge=1, le=10)
    fetcher_batching_window_seconds: int = Field(default=5, ge=0, le=300)
    fetcher_max_concurrency: int = Field(default=5, ge=2, le=1000)
    fetcher_concurrency: int = _FUNCTION_DEFAULTS.fetcher_concurrency
    # The account's Invoicing API limit (calls/s per operation) the fetchers share; 0: no ceiling.
    invoicing_calls_per_second: float = Field(default=0.0, ge=0.0, le=10_000.0)
    max_receive_count: int = Field(default=MAX_RECEIVE_COUNT, ge=2, le=1000)

    # Storage
    kms_enabled: bool = False
    object_lock_enabled: bool = False
    object_lock_retention_years: int = Field(default=10, ge=1, le=100)
    lifecycle_infrequent_access_days: int = Field(default=90, ge=0)
    lifecycle_archive_days: int = Field(default=365, ge=0)
    lifecycle_archive_storage_class: ARCHIVE_STORAGE_CLASSES = "GLACIER_INSTANT_RETRIEVAL"
    abort_incomplete_multipart_upload_days: int = Field(default=7, ge=1)
    access_log_retention_days: int = Field(default=365, ge=1)

    # Monitoring
    alarm_email: str = ""

    # Reconciliation with the cost data (docs/reconciliation.md): off unless the export is named
    cost_data_export: str = ""  # s3://bucket/prefix/ of a CUR 2.0 or FOCUS 1.2 export (or above it)
    cost_data_reconciliation_day: int = Field(default=10, ge=1, le=28)  # day of the month, 07:00 UTC
    reconciliation_tolerance: str = ""  # empty: one unit of each invoice's last decimal place

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        if value and not _ACCOUNT.match(value):
            raise ValueError("must be a 12-digit AWS account id, or empty for an environment-agnostic stack")
        return value

    @field_validator("schedule_expression")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not _SCHEDULE.match(value.strip()):
            raise ValueError("must be an EventBridge expression such as 'cron(0 6 * * ? *)' or 'rate(1 day)'")
        return value.strip()

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"must be one of CloudWatch Logs' periods: {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        return value

    @field_validator("alarm_email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if value and not _EMAIL.match(value):
            raise ValueError("must be an e-mail address, or empty for no subscription")
        return value

    @field_validator("cost_data_export", "reconciliation_tolerance")
    @classmethod
    def _reconciliation(cls, value: str, info: ValidationInfo) -> str:
        try:
            if value.strip():
                Settings(**{info.field_name: value.strip()})  # type: ignore[arg-type]
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return value.strip()

    @field_validator("lifecycle_infrequent_access_days")
    @classmethod
    def _ia_days(cls, value: int) -> int:
        if 0 < value < 30:
            raise ValueError("S3 moves objects to STANDARD_IA after 30 days at the earliest (0 turns it off)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DeploySettings:
        ia, archive = self.lifecycle_infrequent_access_days, self.lifecycle_archive_days
        if archive and ia and archive < ia + 30:
            raise ValueError(
                "lifecycle_archive_days: must be at least 30 days after lifecycle_infrequent_access_days "
                "(STANDARD_IA bills a 30-day minimum), or 0"
            )
        if self.listing_reserve_seconds > self.lister_timeout_seconds / 2:
            raise ValueError(
                "listing_reserve_seconds: must be at most half of lister_timeout_seconds "
                "(the rest of each invocation is for listing)"
            )
        if self.max_document_bytes > self.fetcher_ephemeral_storage_mib * 1024 * 1024:
            raise ValueError(
                "max_document_bytes: must fit the fetcher's ephemeral storage "
                "(fetcher_ephemeral_storage_mib), where a document waits between download and upload"
            )
        longest = function_role_name(self.stack_name, self.region, "fetcher")
        if len(longest) > MAX_ROLE_NAME:
            raise ValueError(
                f"stack_name: the functions' roles are named <stack_name>-<region>-lister/-fetcher, and "
                f"{longest!r} is {len(longest)} characters, over IAM's {MAX_ROLE_NAME}: shorten stack_name"
            )
        lease = self.effective_lease_seconds
        if lease < self.fetcher_timeout_seconds:
            raise ValueError("lease_seconds: must be at least fetcher_timeout_seconds")
        if lease > self.visibility_timeout_seconds:
            raise ValueError(
                "lease_seconds: must not exceed the queue's visibility timeout (6 x fetcher timeout)"
            )
        return self

    @property
    def effective_lease_seconds(self) -> int:
        """LEASE_SECONDS: as set, or derived (a claim must outlive one invocation, not a redelivery)."""
        if self.lease_seconds is not None:
            return self.lease_seconds
        # The functions' default (900 s), kept between the fetcher's timeout and the visibility timeout.
        return max(
            self.fetcher_timeout_seconds,
            min(_FUNCTION_DEFAULTS.lease_seconds, self.visibility_timeout_seconds),
        )

    @property
    def reconciliation_enabled(self) -> bool:
        return bool(self.cost_data_export)

    @property
    def fetcher_rate_limit(self) -> float:
        """INVOICING_RATE_LIMIT: each fetcher process's share of the account's Invoicing limit. Lambda
        runs at most fetcher_max_concurrency fetchers, each its own process with its own pacer."""
        return self.invoicing_calls_per_second / self.fetcher_max_concurrency

    @property
    def listing_visibility_timeout_seconds(self) -> int:
        """The listing queue's: a continuation is redelivered only after its lister invocation is over."""
        return self.lister_timeout_seconds + 60

    @property
    def visibility_timeout_seconds(self) -> int:
        """The invoice queue's visibility timeout."""
        return VISIBILITY_TIMEOUT_FACTOR * self.fetcher_timeout_seconds

    def role_name(self, function: str) -> str:
        """The fixed name of a function's role (a payer role trusts these; see infra/payer_role.py)."""
        return function_role_name(self.stack_name, self.region, function)

    @property
    def reads_with_own_credentials(self) -> bool:
        """Some source is read with the functions' own credentials: accounts in account_ids, or, with no
        source roles at all, the stack's own account."""
        return bool(self.account_ids) or not self.source_role_arns

    @property
    def assumable_role_arns(self) -> tuple[str, ...]:
        """The distinct roles of `source_role_arns`: the lister and fetcher may assume these, no other."""
        return role_arns(parse_sources(self.source_role_arns))

    def function_values(self) -> dict[str, str]:
        """Configured function settings by invoice_archiver.config field name, as env var strings."""
        return {
            "archive_prefix": self.archive_prefix,
            "receiver_roles": ",".join(self.receiver_roles),
            "source_role_arns": ",".join(self.source_role_arns),
            "source_external_id": self.source_external_id,
            "discover_invoice_units": "true" if self.discover_invoice_units else "false",
            "lookback_periods": str(self.lookback_periods),
            "lease_seconds": str(self.effective_lease_seconds),
            "download_attempts": str(self.download_attempts),
            "invoicing_max_attempts": str(self.invoicing_max_attempts),
            "multipart_threshold_bytes": str(self.multipart_threshold_bytes),
            "max_document_bytes": str(self.max_document_bytes),
            "document_host_suffixes": ",".join(self.document_host_suffixes),
            "fetcher_concurrency": str(self.fetcher_concurrency),
            "invoicing_rate_limit": f"{self.fetcher_rate_limit:g}",
            "revisit_days": ",".join(map(str, self.revisit_days)) or "none",
            "event_bus_name": self.event_bus_name,
            "missing_invoice_day": str(self.missing_invoice_day),
            "unsettled_after_days": str(self.unsettled_after_days),
            "listing_reserve_seconds": f"{self.listing_reserve_seconds:g}",
        }
