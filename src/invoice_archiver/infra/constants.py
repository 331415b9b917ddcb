"""Names of the stack's constructs, outputs and fixed infrastructure values: one place to change them."""

from __future__ import annotations

from typing import Final

DEFAULT_STACK_NAME: Final = "InvoiceArchiver"

# The Invoicing API lives in us-east-1, so that is where the stack goes unless told otherwise.
DEFAULT_REGION: Final = "us-east-1"

# The newest Python runtime both CDK's lambda.Runtime and the Powertools V3 layer support (cdk-nag's
# AwsSolutions-L1 also requires the newest runtime of the family).
PYTHON_RUNTIME: Final = "python3.14"

# Powertools for AWS Lambda (Python) V3, the layer AWS publishes (it bundles pydantic v2 and the
# X-Ray SDK: the layer is built with the `[all]` extras; boto3 comes from the Lambda runtime).
POWERTOOLS_LAYER_ACCOUNT: Final = "017000801446"
POWERTOOLS_LAYER_ARN_FORMAT: Final = (
    "arn:{partition}:lambda:{region}:"
    + POWERTOOLS_LAYER_ACCOUNT
    + ":layer:AWSLambdaPowertoolsPythonV3-{python_version}-arm64:{version}"
)

# The reconciler's own modules (and the pyarrow they import): in its asset only, never in the lister's and
# fetcher's, whose packages stay as they were (infra/reconciliation.py).
RECONCILER_MODULES: Final = (
    "invoice_archiver/handlers/reconciler.py",
    "invoice_archiver/logic/reconcil*.py",
    "invoice_archiver/logic/scheduled_reconciliation.py",
    "invoice_archiver/logic/cost_*.py",
    "invoice_archiver/dal/cost_*.py",
    "invoice_archiver/dal/archived_summaries.py",
    "invoice_archiver/dal/reconciliation_results.py",
    "invoice_archiver/models/cost.py",
    "invoice_archiver/models/reconciliation.py",
)
# Lambda code asset: src/ holding the invoice_archiver package, without the parts that never run in
# Lambda (the CLI, the local sandbox, the CDK app) and without what Lambda never needs.
FUNCTIONS_ASSET_DIR: Final = "src"
FUNCTIONS_ASSET_EXCLUDE: Final = (
    *RECONCILER_MODULES,
    "invoice_archiver/cli",
    "invoice_archiver/local",
    "invoice_archiver/sandbox",
    "invoice_archiver/infra",
    "**/__pycache__",
    "**/*.pyc",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/tests",
    "**/test_*.py",
    "*.egg-info",
)

# Where the fetcher spools documents: Lambda's ephemeral storage.
LAMBDA_TMP_DIR: Final = "/tmp"  # noqa: S108 - Lambda's only writable path

# SQS: the queue's visibility timeout is this many times the fetcher's timeout (AWS guidance for
# SQS event sources: retries of a throttled batch and the batching window fit inside it).
VISIBILITY_TIMEOUT_FACTOR: Final = 6
# SQS keeps a message at most 14 days; the DLQs keep theirs that long so a person notices them.
DLQ_RETENTION_DAYS: Final = 14
INVOICE_QUEUE_RETENTION_DAYS: Final = 4

# Env vars a function reads that the stack never sets: local-sandbox switches only.
LOCAL_ONLY_ENV_VARS: Final = frozenset({"ALLOW_LOOPBACK_DOCUMENT_URLS"})


# Each function's role has a fixed name, so that a payer account's role can trust exactly these two
# (aws:PrincipalArn) and the work queues can admit exactly the lister, without a reference across
# stacks: `<stack name>-<region>-lister` and `-fetcher` (IAM names are global to the account, hence
# the region). IAM allows 64 characters.
MAX_ROLE_NAME = 64


def function_role_name(stack_name: str, region: str, function: str) -> str:
    return f"{stack_name}-{region}-{function}"


class Id:
    """Construct ids (they become logical-id prefixes: renaming one replaces its resources)."""

    ENCRYPTION: Final = "Encryption"
    STORAGE: Final = "Storage"
    PIPELINE: Final = "Pipeline"
    SCHEDULE: Final = "Schedule"
    MONITORING: Final = "Monitoring"
    RECONCILIATION: Final = "Reconciliation"


class OutputKey:
    """CloudFormation output keys: scripts and the README read these."""

    ARCHIVE_BUCKET: Final = "ArchiveBucketName"
    ACCESS_LOG_BUCKET: Final = "AccessLogBucketName"
    LEDGER_TABLE: Final = "LedgerTableName"
    INVOICE_QUEUE: Final = "InvoiceQueueUrl"
    DEAD_LETTER_QUEUE: Final = "DeadLetterQueueUrl"
    SCHEDULE_DEAD_LETTER_QUEUE: Final = "ScheduleDeadLetterQueueUrl"
    LISTER_FUNCTION: Final = "ListerFunctionName"
    FETCHER_FUNCTION: Final = "FetcherFunctionName"
    ALARM_TOPIC: Final = "AlarmTopicArn"
    DASHBOARD: Final = "DashboardName"
    RECONCILER_FUNCTION: Final = "ReconcilerFunctionName"
