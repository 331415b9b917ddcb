"""One reconciliation, start to end: the one core `invoice-archiver reconcile` and the reconciler function
share. It reads the period's export (streamed), the archive's latest summaries of the period (the same
reading as `invoice-archiver report`) and, for invoices the archive lacks, their ledger records; then
logic.reconciliation compares them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from invoice_archiver.dal import archived_summaries, cost_export, cost_reader
from invoice_archiver.dal.ledger import invoices
from invoice_archiver.dal.ledger.records import InvoiceRecord
from invoice_archiver.logic import reconciliation
from invoice_archiver.models.cost import CostData, ExportFormat
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.reconciliation import Reconciliation

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class ArchiveScope:
    """The archive to compare with: its bucket, key prefix, ledger, and configured accounts."""

    bucket: str
    prefix: str
    table: str
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    period: BillingPeriod
    cost_data: str  # s3://bucket/prefix/ or a local folder
    now: datetime
    export_format: ExportFormat | None = None  # None: told by the files' columns
    tolerance: Decimal | None = None  # None: one unit of each invoice's last decimal place
    final_day: int = reconciliation.DEFAULT_FINAL_DAY


@dataclass
class Progress:
    """Callbacks for a person waiting (the CLI's trackers); all optional."""

    on_files: Callable[[list[str]], None] | None = None
    on_cost_batch: Callable[[str, int], None] | None = None
    on_summaries_listed: Callable[[int], None] | None = None
    on_summary_read: Callable[[], None] | None = None
    notes: list[str] = field(default_factory=list)


def read_cost_data(request: Request, s3: S3Client, progress: Progress | None = None) -> CostData:
    """The period's export at request.cost_data, summed per invoice (ExportNotFound, ExportUnreadable)."""
    progress = progress or Progress()
    location = cost_export.parse_location(request.cost_data)
    files = cost_export.find(location, request.period, s3)
    form, chosen = cost_reader.choose(files, request.export_format, location.text, s3)
    if progress.on_files is not None:
        progress.on_files([item.name for item in chosen])
    return cost_reader.read(
        chosen, request.period, form, location.text, s3=s3, on_batch=progress.on_cost_batch
    )


def reconcile(
    request: Request,
    scope: ArchiveScope,
    *,
    s3: S3Client,
    dynamodb: DynamoDBClient,
    progress: Progress | None = None,
    cost: CostData | None = None,
) -> Reconciliation:
    """The whole reconciliation; `cost`: the export already read by read_cost_data (the CLI shows each
    step's progress on its own)."""
    progress = progress or Progress()
    cost = cost if cost is not None else read_cost_data(request, s3, progress)
    folders = archived_summaries.account_folders(scope.bucket, scope.prefix, s3)
    archive_accounts = {*scope.accounts, *folders}
    found = archived_summaries.period_summaries(
        s3,
        scope.bucket,
        scope.prefix,
        sorted(archive_accounts | cost.payer_accounts),
        request.period,
        on_listed=progress.on_summaries_listed,
        on_read=progress.on_summary_read,
    )
    archived = reconciliation.archived_from(found.documents)
    archived_ids = {item.invoice_id for item in archived}
    lacking = {
        payer
        for (invoice_id, _), lines in cost.invoices().items()
        if invoice_id not in archived_ids
        for payer in lines.payer_accounts
    }
    outcome = reconciliation.compare(
        request.period,
        cost,
        archived,
        state=reconciliation.finality(request.period, request.now, cost, request.final_day),
        tolerance=request.tolerance,
        archive_accounts=archive_accounts,
        ledger=_ledger_items(dynamodb, scope.table, sorted(lacking), request.period, progress),
        generated_at=request.now.isoformat(),
    )
    outcome.incomplete_folders = found.incomplete_folders
    return outcome


def _ledger_items(
    dynamodb: DynamoDBClient, table: str, accounts: list[str], period: BillingPeriod, progress: Progress
) -> dict[str, InvoiceRecord]:
    """invoice id -> ledger record, for the accounts whose invoices the archive lacks (what went wrong)."""
    items: dict[str, InvoiceRecord] = {}
    for account in accounts:
        try:
            found = list(invoices.query_period(dynamodb, table, account, period))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            progress.notes.append(
                f"ledger table {table!r} not found: no ledger record for invoices not archived"
            )
            return items
        items.update({record.invoice_id: record for record in found})
    return items
