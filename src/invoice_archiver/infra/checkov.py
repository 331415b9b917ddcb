"""checkov findings this stack does not fix, each with the reason a security reviewer can check.

`make checkov` scans the synthesized template and fails on any failed check. A finding is either fixed in
its construct or skipped here, on the one resource it concerns, through the resource's CloudFormation
metadata (`Metadata.checkov.skip`: `[{"id": ..., "comment": ...}]`), never globally. Every reason lives in
this module; tests/infra/test_checkov.py pins which ids each resource skips, so a new finding or a lost
reason fails a test. docs/decisions.md says what was fixed instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnResource
from constructs import IConstruct


@dataclass(frozen=True)
class Finding:
    """A checkov check id and why it does not apply to the resource it is skipped on."""

    check_id: str
    reason: str


# S3 -----------------------------------------------------------------------------------------------

ACCESS_LOG_BUCKET_NOT_LOGGED = Finding(
    "CKV_AWS_18",
    "This bucket is the server-access-log target of the archive bucket. Logging it as well would need "
    "another log bucket, which would need one in turn. The S3 logging service writes to it through its "
    "bucket policy and no function's role can read or write it; it blocks public access, requires TLS "
    "1.2 and is versioned, and CloudTrail records its management events.",
)

# DynamoDB -----------------------------------------------------------------------------------------

LEDGER_AWS_MANAGED_KEY = Finding(
    "CKV_AWS_119",
    "The ledger is encrypted at rest with the AWS-managed KMS key aws/dynamodb. A customer-managed key "
    "is opt-in (context kms_enabled=true, which then encrypts the table with it and this skip is not "
    "applied): the ledger holds invoice ids, S3 keys and checksums, no credentials.",
)

# SQS ----------------------------------------------------------------------------------------------

QUEUE_SQS_MANAGED_SSE = Finding(
    "CKV_AWS_27",
    "The queue is encrypted at rest with SQS-managed SSE (SqsManagedSseEnabled: true), which checkov "
    "does not recognise: it only looks for KmsMasterKeyId. A customer-managed key is opt-in (context "
    "kms_enabled=true, which then encrypts the queue with it and this skip is not applied).",
)
SCHEDULE_DLQ_SQS_MANAGED_SSE = Finding(
    "CKV_AWS_27",
    "The queue is encrypted at rest with SQS-managed SSE (SqsManagedSseEnabled: true), which checkov "
    "does not recognise: it only looks for KmsMasterKeyId. It stays SQS-managed even with a CMK: "
    "EventBridge, which writes to it, would otherwise need the key, and its messages hold only the "
    "scheduled event (no invoice data).",
)

# CloudWatch Logs ----------------------------------------------------------------------------------

LOG_GROUP_SERVICE_KEY = Finding(
    "CKV_AWS_158",
    "CloudWatch Logs encrypts every log group at rest with service-managed keys. A customer-managed key "
    "is opt-in (context kms_enabled=true, which then encrypts the functions' log groups with it and "
    "this skip is not applied). The functions log invoice ids and counts, no document content.",
)

# Lambda -------------------------------------------------------------------------------------------

LISTER_NO_FUNCTION_DLQ = Finding(
    "CKV_AWS_116",
    "The lister's only input is the scheduled event, which holds no data to recover. Invocations "
    "EventBridge cannot deliver go to the schedule's own dead-letter queue; a run that fails after "
    "Lambda's retries raises the ListerErrors alarm, and re-running it (or the next scheduled run, "
    "which looks back over earlier periods) is idempotent.",
)
FETCHER_NO_FUNCTION_DLQ = Finding(
    "CKV_AWS_116",
    "The fetcher is invoked only by its SQS event source mapping, synchronously, and a function DLQ "
    "applies to asynchronous invocations only. Messages it cannot process go to the invoice queue's "
    "dead-letter queue (redrive policy), which the DeadLetterQueueNotEmpty alarm watches.",
)
NO_VPC = Finding(
    "CKV_AWS_117",
    "The function reaches only public endpoints: the AWS Invoicing API (no VPC endpoint exists for it), "
    "the pre-signed document URLs it returns, and S3, DynamoDB and SQS. It has no resource in a VPC to "
    "reach or to protect; a VPC would add NAT gateways without narrowing what it can reach. Its role "
    "limits it to this stack's resources.",
)
NO_RESERVED_CONCURRENCY = Finding(
    "CKV_AWS_115",
    "Concurrency is bounded without reserving any: the fetcher by its SQS event source's "
    "MaximumConcurrency (context fetcher_max_concurrency), the lister by its schedule (one run per "
    "trigger). Reserved concurrency would take capacity from the account's unreserved pool, and fails "
    "to deploy in accounts whose concurrency quota is at its minimum; the throttle alarms watch both.",
)
ENVIRONMENT_AWS_MANAGED_KEY = Finding(
    "CKV_AWS_173",
    "Lambda encrypts environment variables at rest with its AWS-managed key. These hold resource names, "
    "queue URLs and settings, no secrets. A customer-managed key is opt-in (context kms_enabled=true, "
    "which then sets KmsKeyArn and this skip is not applied).",
)

RECONCILER_NO_FUNCTION_DLQ = Finding(
    "CKV_AWS_116",
    "The reconciler's only input is its monthly scheduled event, which holds no data to recover. "
    "Invocations EventBridge cannot deliver go to the rule's own dead-letter queue; a run that fails "
    "raises the ReconcilerErrors alarm, and rerunning it writes a new result beside any earlier one.",
)
RECONCILER_NO_VPC = Finding(
    "CKV_AWS_117",
    "The reconciler reaches only S3 (the cost data export and the archive bucket) and DynamoDB (the "
    "ledger), through their public endpoints; it has no resource in a VPC to reach or to protect. Its "
    "role limits it to the export's prefix, the archive prefix, reconciliation/ and the ledger.",
)
RECONCILER_NO_RESERVED_CONCURRENCY = Finding(
    "CKV_AWS_115",
    "The reconciler runs once a month, from its schedule only: its concurrency is bounded by that. "
    "Reserved concurrency would take capacity from the account's unreserved pool, and fails to deploy in "
    "accounts whose concurrency quota is at its minimum.",
)

FUNCTION_DLQ = {
    "lister": LISTER_NO_FUNCTION_DLQ,
    "fetcher": FETCHER_NO_FUNCTION_DLQ,
    "reconciler": RECONCILER_NO_FUNCTION_DLQ,
}


def skip(construct: IConstruct, *findings: Finding) -> None:
    """Skip `findings` on the construct's CloudFormation resource, each with its reason.

    Merges with skips added earlier; skipping the same check id twice on one resource is an error.
    """
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    assert isinstance(resource, CfnResource), f"{construct.node.path} has no CloudFormation resource"
    existing: Any = resource.get_metadata("checkov") or {}
    skips: list[dict[str, str]] = [dict(entry) for entry in existing.get("skip", [])]
    for finding in findings:
        assert finding.check_id not in {entry["id"] for entry in skips}, (
            f"{finding.check_id} is already skipped on {construct.node.path}"
        )
        skips.append({"id": finding.check_id, "comment": finding.reason})
    resource.add_metadata("checkov", {"skip": skips})
