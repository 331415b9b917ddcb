"""Every environment variable the functions read: its name, its Settings field, which functions read it,
and what it means.

`ENV_VARS` is the single source of truth for the variable names. The CDK stack builds each function's
environment from it (infra/environment.py), config.py parses it into Settings, and docs/configuration.md
documents it; tests check that all three agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
