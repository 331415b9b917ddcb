"""What the lister and the fetcher may do: one statement per need, each with a Sid saying why.

tests/iam replays every call the functions make against these statements, and fails on a grant that no
call needs (docs/decisions.md, "Proving the first deploy").
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from invoice_archiver.constants import UNSETTLED_INDEX
from invoice_archiver.dal.reconciliation_results import PREFIX as RESULTS_PREFIX
from invoice_archiver.infra.queues import Queues
from invoice_archiver.infra.settings import DeploySettings
from invoice_archiver.infra.storage import Storage

# Service Authorization Reference, "AWS Invoicing Service": ListInvoiceSummaries and GetInvoicePDF have
# no resource types (Resource must be "*"), and each operation is also authorized against
# aws-portal:ViewBilling, which has no resource types either.
INVOICING_WILDCARD_REASON = (
    "invoicing:ListInvoiceSummaries, invoicing:GetInvoicePDF and aws-portal:ViewBilling (which the "
    "Invoicing operations also authorize, per the Service Authorization Reference) support no "
    "resource-level permissions: the Resource element must be '*'. Read-only billing actions."
)


def lister_statements(
    settings: DeploySettings, storage: Storage, queues: Queues, key: kms.IKey | None
) -> list[iam.PolicyStatement]:
    statements = [
        iam.PolicyStatement(
            sid="ListInvoices",
            actions=[
                "invoicing:ListInvoiceSummaries",
                # Invoice-unit discovery with the function's own credentials (ACCOUNT_IDS sources).
                *(["invoicing:ListInvoiceUnits"] if _discovers_with_own_credentials(settings) else []),
                "aws-portal:ViewBilling",
            ],
            resources=["*"],  # no resource-level permissions: see INVOICING_WILDCARD_REASON
        ),
        iam.PolicyStatement(
            sid="SendToInvoiceQueue", actions=["sqs:SendMessage"], resources=[queues.invoice.queue_arn]
        ),
        iam.PolicyStatement(
            # A listing that nears the end of its invocation continues through this queue.
            sid="ContinueListing",
            actions=["sqs:SendMessage"],
            resources=[queues.listing.queue_arn],
        ),
        _quarantine(queues),
        iam.PolicyStatement(
            # One Query per account and billing period: what is archived, and as what; and one per
            # account on the index of unsettled invoices, re-queued whatever their period.
            sid="ReadLedger",
            actions=["dynamodb:Query"],
            resources=[
                storage.ledger_table.table_arn,
                f"{storage.ledger_table.table_arn}/index/{UNSETTLED_INDEX}",
            ],
        ),
        iam.PolicyStatement(
            # A source's own record: FAILED with its reason, cleared once it lists cleanly again.
            sid="RecordSourceStatus",
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            resources=[storage.ledger_table.table_arn],
        ),
    ]
    return _finish(settings, statements, key)


def fetcher_statements(
    scope: Construct, settings: DeploySettings, storage: Storage, queues: Queues, key: kms.IKey | None
) -> list[iam.PolicyStatement]:
    bucket = storage.archive_bucket
    statements = [
        iam.PolicyStatement(
            # ListInvoiceSummaries confirms each invoice before anything is archived (the evidence
            # rule); ListInvoiceUnits checks a discovered receiver a message names.
            sid="ReadInvoices",
            actions=[
                "invoicing:ListInvoiceSummaries",
                "invoicing:GetInvoicePDF",
                *(["invoicing:ListInvoiceUnits"] if _discovers_with_own_credentials(settings) else []),
                "aws-portal:ViewBilling",
            ],
            resources=["*"],  # no resource-level permissions: see INVOICING_WILDCARD_REASON
        ),
        iam.PolicyStatement(
            sid="WriteArchivePrefix",
            # PutObject also covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload;
            # GetObject covers HeadObject (used to resume a crashed attempt).
            actions=["s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:AbortMultipartUpload"],
            resources=[bucket.arn_for_objects(f"{settings.archive_prefix}/*")],
        ),
        iam.PolicyStatement(
            sid="ListArchiveBucket",
            # Without it, HeadObject on a key that does not exist yet answers 403 instead of 404.
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
        ),
        iam.PolicyStatement(
            sid="ReadWriteLedger",
            # Conditional updates (claims, releases, records) and a consistent read of one item.
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
            resources=[storage.ledger_table.table_arn],
        ),
        _quarantine(queues),
        iam.PolicyStatement(
            # Invoice Archived / Invoice Revised, on the configured bus only.
            sid="PublishInvoiceEvents",
            actions=["events:PutEvents"],
            resources=[_event_bus_arn(scope, settings.event_bus_name)],
        ),
    ]
    # No sts:GetCallerIdentity: the fetcher asks it only when neither ACCOUNT_IDS nor source roles
    # are configured, and the stack always sets one of them (ACCOUNT_IDS is the stack's own account
    # when no role is); STS answers GetCallerIdentity without any permission anyway.
    return _finish(settings, statements, key)


def _quarantine(queues: Queues) -> iam.PolicyStatement:
    # A message (or a summary) that can never succeed goes to the DLQ with its reason.
    return iam.PolicyStatement(
        sid="QuarantineToDeadLetterQueue",
        actions=["sqs:SendMessage"],
        resources=[queues.dead_letter.queue_arn],
    )


def _finish(
    settings: DeploySettings, statements: list[iam.PolicyStatement], key: kms.IKey | None
) -> list[iam.PolicyStatement]:
    """The key (SSE-KMS objects and queue messages: a data key to write, Decrypt to read; nothing else)
    and the source roles, then without the Invoicing statements the own credentials never use."""
    if key is not None:
        statements.append(
            iam.PolicyStatement(
                sid="UseArchiveKey", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn]
            )
        )
    arns = settings.assumable_role_arns
    if arns:  # sts:AssumeRole on exactly the configured source roles
        statements.append(
            iam.PolicyStatement(sid="AssumeSourceRoles", actions=["sts:AssumeRole"], resources=list(arns))
        )
    if settings.reads_with_own_credentials:
        return statements
    # Every source behind a role: the functions' own credentials never call the Invoicing API (the payer
    # roles grant it), so nothing lets them.
    billing = ("invoicing:", "aws-portal:")
    return [s for s in statements if not any(a.startswith(billing) for a in s.actions)]


def _discovers_with_own_credentials(settings: DeploySettings) -> bool:
    """Invoice units are discovered with the functions' own credentials only for the accounts read with
    them (account_ids, or the stack's own account when no source role is configured); a source read
    through a role discovers through that role, whose policy grants it."""
    return settings.discover_invoice_units and settings.reads_with_own_credentials


def _event_bus_arn(scope: Construct, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return Stack.of(scope).format_arn(service="events", resource="event-bus", resource_name=name)


def reconciler_statements(
    settings: DeploySettings,
    storage: Storage,
    *,
    log_group_arn: str,
    export: tuple[str, str],
    key: kms.IKey | None,
) -> list[iam.PolicyStatement]:
    """The reconciler: its own logs; the export's prefix, read (`export`: the bucket's ARN and the objects'
    pattern); the archived summaries read, its results created; the ledger."""
    export_arn, export_objects = export
    bucket, prefix = storage.archive_bucket, settings.archive_prefix
    export_prefix = export_objects.removeprefix(export_arn + "/").removesuffix("*").rstrip("/")
    listing = {"StringLike": {"s3:prefix": [f"{export_prefix}/*"]}} if export_prefix else None
    statements = [
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[f"{log_group_arn}:*"],
        ),
        iam.PolicyStatement(sid="ReadCostDataExport", actions=["s3:GetObject"], resources=[export_objects]),
        iam.PolicyStatement(
            sid="ListCostDataExport",
            actions=["s3:ListBucket"],
            resources=[export_arn],
            conditions=listing,
        ),
        iam.PolicyStatement(
            sid="ReadArchivedSummaries",
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects(f"{prefix}/*")],
        ),
        iam.PolicyStatement(
            sid="ListArchive",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}/*"]}},
        ),
        iam.PolicyStatement(
            sid="WriteReconciliationResults",
            actions=["s3:PutObject", "s3:PutObjectTagging"],
            resources=[bucket.arn_for_objects(f"{RESULTS_PREFIX}/*")],
        ),
        iam.PolicyStatement(
            sid="ReadLedger", actions=["dynamodb:Query"], resources=[storage.ledger_table.table_arn]
        ),
    ]
    if key is not None:
        statements.append(
            iam.PolicyStatement(
                sid="UseArchiveKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            )
        )
    return statements
