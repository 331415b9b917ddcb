"""The reconciler function's one job: reconcile a period with the cost data and store the result.

The scheduled event (EventBridge, monthly) names no period: the previous month is reconciled, the one
whose export is final by then. An invocation may name one instead: {"billing_period": "YYYY-MM"}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from invoice_archiver.config import Settings
from invoice_archiver.dal import reconciliation_results
from invoice_archiver.logic.reconcile_job import ArchiveScope, Request, reconcile
from invoice_archiver.models.period import BillingPeriod, last_complete_period
from invoice_archiver.models.reconciliation import Reconciliation

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


class ReconcileEvent(BaseModel):
    """A scheduled event (its `time`), or a request naming the period."""

    model_config = ConfigDict(extra="ignore")

    billing_period: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    time: datetime | None = None

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)

    def period(self, now: datetime) -> BillingPeriod:
        if self.billing_period is not None:
            return BillingPeriod.parse(self.billing_period)
        return last_complete_period(self.time or now)


@dataclass(frozen=True)
class Recorded:
    outcome: Reconciliation
    key: str


def run(
    event: dict[str, Any],
    config: Settings,
    *,
    s3: S3Client,
    dynamodb: DynamoDBClient,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Recorded:
    now = clock()
    parsed = ReconcileEvent.model_validate(event)
    period = parsed.period(now)
    request = Request(
        period=period,
        cost_data=config.cost_data_export,
        now=now,
        tolerance=config.reconciliation_tolerance,
    )
    accounts = (*config.account_ids, *(source.account_id for source in config.source_role_arns))
    scope = ArchiveScope(config.archive_bucket, config.archive_prefix, config.ledger_table, accounts)
    outcome = reconcile(request, scope, s3=s3, dynamodb=dynamodb)
    key = reconciliation_results.put_result(s3, config.archive_bucket, period, outcome.as_json(), now)
    return Recorded(outcome, key)
