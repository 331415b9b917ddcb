"""Names shared by the functions, the CLI and the CDK stack: one place to change them."""

from __future__ import annotations

from typing import Final

SERVICE_NAME: Final = "invoice-archiver"
METRICS_NAMESPACE: Final = "InvoiceArchiver"

# Where the API lives: the AWS Invoicing API is served from us-east-1 only.
DEFAULT_INVOICING_REGION: Final = "us-east-1"

# ReceiverRole data starts here; a ReceiverRole query for an earlier period is a ValidationException.
RECEIVER_ROLE_DATA_START: Final = (2025, 6)
RECEIVER_ROLES: Final = ("SELLER", "RESELLER", "BUYER")

# Lambda handler entry points, relative to the functions/ asset.
LISTER_HANDLER: Final = "invoice_archiver.handlers.lister.handler"
FETCHER_HANDLER: Final = "invoice_archiver.handlers.fetcher.handler"
RECONCILER_HANDLER: Final = "invoice_archiver.handlers.reconciler.handler"

# Events announced on EventBridge for downstream consumers (see docs/events.md).
EVENT_SOURCE: Final = "invoice-archiver"
DEFAULT_EVENT_BUS: Final = "default"


class DetailType:
    ARCHIVED: Final = "Invoice Archived"
    REVISED: Final = "Invoice Revised"


# DynamoDB ledger key schema. pk = account id, sk = "<YYYY-MM>#<invoice id>".
LEDGER_PARTITION_KEY: Final = "pk"
LEDGER_SORT_KEY: Final = "sk"
# A source's own record in the ledger: pk = account id, sk = SOURCE_SORT_KEY (never a period's prefix).
SOURCE_SORT_KEY: Final = "SOURCE"
# Receives of a message before SQS moves it to the DLQ: the stack's default (context key
# max_receive_count) and the local queues'.
MAX_RECEIVE_COUNT: Final = 5
# The ledger's sparse index of unsettled invoices (dal/ledger/unsettled.py): partition key pk (the
# account), sort key UNSETTLED_SINCE, which an item holds only while it is unsettled; the attributes it
# projects.
UNSETTLED_INDEX: Final = "Unsettled"
UNSETTLED_SINCE: Final = "unsettled_since"
UNSETTLED_PROJECTED: Final = ("invoice_id", "billing_period", "status", "lease_expires_at", "source_role_arn")


class Metric:
    """CloudWatch metric names (namespace METRICS_NAMESPACE)."""

    INVOICES_LISTED: Final = "InvoicesListed"
    INVOICES_ARCHIVED: Final = "InvoicesArchived"
    INVOICES_SKIPPED: Final = "InvoicesSkipped"
    INVOICES_FAILED: Final = "InvoicesFailed"
    INVOICES_RETRIED: Final = "InvoicesRetried"
    DOCUMENTS_ARCHIVED: Final = "DocumentsArchived"
    BYTES_ARCHIVED: Final = "BytesArchived"
    MESSAGES_QUARANTINED: Final = "MessagesQuarantined"
    SUMMARIES_QUARANTINED: Final = "SummariesQuarantined"
    DOCUMENTS_UNDESCRIBED: Final = "DocumentsUndescribed"
    UNRECOGNIZED_DOCUMENT_TYPES: Final = "UnrecognizedDocumentTypes"
    UNMODELED_FIELDS: Final = "UnmodeledFields"
    INVOICES_ENQUEUED: Final = "InvoicesEnqueued"
    INVOICES_RECHECKED: Final = "InvoicesRechecked"
    INVOICES_REVISED: Final = "InvoicesRevised"
    DOCUMENTS_NO_LONGER_LISTED: Final = "DocumentsNoLongerListed"
    EVENTS_PUBLISHED: Final = "EventsPublished"
    ACCOUNTS_WITHOUT_INVOICE: Final = "AccountsWithoutInvoice"
    SOURCES_FAILED: Final = "SourcesFailed"
    SOURCES_REFUSED: Final = "SourcesRefused"
    LISTING_CONTINUED: Final = "ListingContinued"
    INVOICES_UNSETTLED: Final = "InvoicesUnsettled"
    # The scheduled reconciliation with the cost data (docs/reconciliation.md).
    INVOICES_MISSING_FROM_ARCHIVE: Final = "InvoicesMissingFromArchive"
    RECONCILIATION_PROBLEMS: Final = "ReconciliationProblems"
    INVOICES_RECONCILED: Final = "InvoicesReconciled"
