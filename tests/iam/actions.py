"""What each recorded call needs from IAM: actions on resources.

Source: the Service Authorization Reference (docs.aws.amazon.com/service-authorization/latest/reference/),
the pages "Actions, resources, and condition keys for" Amazon S3, Amazon SQS, Amazon DynamoDB, Amazon
EventBridge, AWS STS, AWS Invoicing Service and AWS KMS; and the S3 and SQS developer guides for the
KMS permissions of encrypted objects and queues. Only the operations the functions call are listed: an
unknown one fails the replay, so a new call cannot slip by unexamined.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.iam.recorder import Call


@dataclass(frozen=True)
class Need:
    action: str
    resource: str  # an ARN, with the template's names (see Names)
    context: tuple[tuple[str, str | None], ...] = ()  # the request's condition keys


@dataclass(frozen=True)
class Names:
    """The deployed names of what the sandbox calls by its local names: the template's view."""

    partition: str
    region: str
    account: str
    bucket: str  # the archive bucket's ARN
    table: str  # the ledger's ARN
    queues: dict[str, str]  # local queue URL -> queue ARN
    key: str | None  # the stack's customer-managed key ARN, if any
    local_bucket: str
    local_table: str

    def bus(self, name: str | None) -> str:
        name = name or "default"
        if name.startswith("arn:"):
            return name
        return f"arn:{self.partition}:events:{self.region}:{self.account}:event-bus/{name}"


# (service, operation) -> the IAM actions it needs (besides KMS, added below for encrypted resources).
S3_OBJECT = {
    "PutObject": ["s3:PutObject"],
    "CreateMultipartUpload": ["s3:PutObject"],
    "UploadPart": ["s3:PutObject"],
    "CompleteMultipartUpload": ["s3:PutObject"],
    "AbortMultipartUpload": ["s3:AbortMultipartUpload"],
    "GetObject": ["s3:GetObject"],
    "HeadObject": ["s3:GetObject"],
}
SQS = {"SendMessage": "sqs:SendMessage", "SendMessageBatch": "sqs:SendMessage"}
DYNAMODB = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"}
INVOICING = {
    "ListInvoiceSummaries": ["invoicing:ListInvoiceSummaries", "aws-portal:ViewBilling"],
    "GetInvoicePDF": ["invoicing:GetInvoicePDF", "aws-portal:ViewBilling"],
    "ListInvoiceUnits": ["invoicing:ListInvoiceUnits"],
}
# S3 creates an object only on these; CreateMultipartUpload and UploadPart do not
# (the s3:ObjectCreationOperation condition key).
CREATING = {"PutObject", "CompleteMultipartUpload"}
MULTIPART = {"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}


def needs(call: Call, names: Names) -> list[Need]:
    """The actions and resources `call` needs, or ValueError for an operation this table does not know."""
    if call.service == "s3":
        return _s3(call, names)
    if call.service == "sqs" and call.operation in SQS:
        queue = names.queues.get(str(call.param("QueueUrl")), f"unknown-queue:{call.param('QueueUrl')}")
        found = [Need(SQS[call.operation], queue)]
        if names.key is not None:  # an SSE-KMS queue: the sender encrypts with the key
            found += [Need("kms:GenerateDataKey", names.key), Need("kms:Decrypt", names.key)]
        return found
    if call.service == "dynamodb" and call.operation in DYNAMODB:
        resource = names.table
        if call.param("IndexName"):
            resource = f"{names.table}/index/{call.param('IndexName')}"
        return [Need(f"dynamodb:{call.operation}", resource)]
    if call.service == "events" and call.operation == "PutEvents":
        buses = {dict(entry).get("EventBusName") for entry in call.param("Entries") or ((),)}
        return [Need("events:PutEvents", names.bus(bus)) for bus in buses]
    if call.service == "sts" and call.operation == "AssumeRole":
        context = (("sts:ExternalId", call.param("ExternalId")),)
        return [Need("sts:AssumeRole", str(call.param("RoleArn")), context)]
    if call.service == "sts" and call.operation == "GetCallerIdentity":
        return []  # needs no permission
    if call.service == "invoicing" and call.operation in INVOICING:
        return [Need(action, "*") for action in INVOICING[call.operation]]
    raise ValueError(f"no IAM mapping for {call.service}:{call.operation} (add it to tests/iam/actions.py)")


def _s3(call: Call, names: Names) -> list[Need]:
    bucket, key = call.param("Bucket"), call.param("Key")
    if bucket != names.local_bucket:
        raise ValueError(f"{call.describe()}: a bucket the stack does not have")
    if call.operation == "ListObjectsV2":
        return [Need("s3:ListBucket", names.bucket)]
    if call.operation not in S3_OBJECT:
        raise ValueError(f"no IAM mapping for s3:{call.operation} (add it to tests/iam/actions.py)")
    resource = f"{names.bucket}/{key}"
    context = (
        ("s3:if-none-match", call.param("IfNoneMatch")),
        ("s3:ObjectCreationOperation", "true" if call.operation in CREATING else "false"),
    )
    found = [Need(action, resource, context) for action in S3_OBJECT[call.operation]]
    if call.param("Tagging"):  # tags set in the creating request
        found.append(Need("s3:PutObjectTagging", resource))
    if call.operation == "HeadObject":  # a key that does not exist answers 404 only with ListBucket
        found.append(Need("s3:ListBucket", names.bucket))
    if names.key is not None:  # SSE-KMS: a write makes a data key; a read, and each multipart step, decrypts
        if call.operation in {"PutObject", *MULTIPART}:
            found.append(Need("kms:GenerateDataKey", names.key))
        if call.operation in {"GetObject", *MULTIPART}:
            found.append(Need("kms:Decrypt", names.key))
    return found
