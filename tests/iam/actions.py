"""What one recorded AWS request needs from IAM: the actions, on which resources, under which condition keys.

Source: the Service Authorization Reference, "Actions, resources, and condition keys for ..." (the table
"API operations defined by ..." maps each operation to the actions it authorizes), for Amazon S3, Amazon
SQS, Amazon DynamoDB, Amazon EventBridge, AWS Security Token Service and AWS Invoicing Service; and, for
customer-managed keys, each service's encryption page: S3 "Using server-side encryption with AWS KMS keys"
(a PUT needs kms:GenerateDataKey, a multipart upload also kms:Decrypt, a GET kms:Decrypt), SQS "Key
management" (a producer needs kms:GenerateDataKey and kms:Decrypt, a consumer kms:Decrypt), DynamoDB
"Encryption at rest: how it works" (DynamoDB decrypts the table key with the caller's permission,
kms:ViaService dynamodb). Notes from those pages that decide an entry are next to it.

An operation missing from RULES fails the replay, naming it and the code that called it: add it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.iam.policy import Mode


@dataclass(frozen=True)
class Rule:
    actions: tuple[str, ...]  # on the resource the request names (`on`)
    on: str  # object | bucket | queue | table | bus | role | none (actions without resource types)
    kms: tuple[str, ...] = ()  # on the resource's customer-managed key, if it has one


_S3_OBJECT_CREATION = {
    "PutObject": "true",
    "CompleteMultipartUpload": "true",
    "CreateMultipartUpload": "false",
    "UploadPart": "false",
}
_DYNAMODB = (
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
)

RULES: dict[tuple[str, str], Rule] = {
    # S3: CreateMultipartUpload, UploadPart and CompleteMultipartUpload are all authorized as s3:PutObject.
    ("s3", "PutObject"): Rule(("s3:PutObject",), "object", kms=("kms:GenerateDataKey",)),
    ("s3", "CreateMultipartUpload"): Rule(
        ("s3:PutObject",), "object", kms=("kms:GenerateDataKey", "kms:Decrypt")
    ),
    ("s3", "UploadPart"): Rule(("s3:PutObject",), "object", kms=("kms:GenerateDataKey", "kms:Decrypt")),
    ("s3", "CompleteMultipartUpload"): Rule(
        ("s3:PutObject",), "object", kms=("kms:GenerateDataKey", "kms:Decrypt")
    ),
    ("s3", "AbortMultipartUpload"): Rule(("s3:AbortMultipartUpload",), "object"),
    ("s3", "GetObject"): Rule(("s3:GetObject",), "object", kms=("kms:Decrypt",)),
    # HeadObject: s3:GetObject, and s3:ListBucket on the bucket, without which a missing key answers 403
    # rather than the 404 our code takes for "not there yet" (S3 API Reference, HeadObject, Permissions).
    ("s3", "HeadObject"): Rule(("s3:GetObject",), "object"),
    # SQS: SendMessageBatch is authorized as sqs:SendMessage, DeleteMessageBatch as sqs:DeleteMessage.
    ("sqs", "SendMessage"): Rule(("sqs:SendMessage",), "queue", kms=("kms:GenerateDataKey", "kms:Decrypt")),
    ("sqs", "SendMessageBatch"): Rule(
        ("sqs:SendMessage",), "queue", kms=("kms:GenerateDataKey", "kms:Decrypt")
    ),
    ("sqs", "ReceiveMessage"): Rule(("sqs:ReceiveMessage",), "queue", kms=("kms:Decrypt",)),
    ("sqs", "DeleteMessage"): Rule(("sqs:DeleteMessage",), "queue"),
    ("sqs", "DeleteMessageBatch"): Rule(("sqs:DeleteMessage",), "queue"),
    ("sqs", "ChangeMessageVisibility"): Rule(("sqs:ChangeMessageVisibility",), "queue"),
    ("sqs", "ChangeMessageVisibilityBatch"): Rule(("sqs:ChangeMessageVisibility",), "queue"),
    ("sqs", "GetQueueAttributes"): Rule(("sqs:GetQueueAttributes",), "queue"),
    ("sqs", "GetQueueUrl"): Rule(("sqs:GetQueueUrl",), "queue"),
    **{("dynamodb", op): Rule((f"dynamodb:{op}",), "table", kms=("kms:Decrypt",)) for op in _DYNAMODB},
    ("events", "PutEvents"): Rule(("events:PutEvents",), "bus"),
    ("sts", "AssumeRole"): Rule(("sts:AssumeRole",), "role"),
    # "No permissions are required to perform this operation" (STS API Reference, GetCallerIdentity).
    ("sts", "GetCallerIdentity"): Rule((), "none"),
    # Invoicing: no resource types; each operation also authorizes aws-portal:ViewBilling.
    ("invoicing", "ListInvoiceSummaries"): Rule(
        ("invoicing:ListInvoiceSummaries", "aws-portal:ViewBilling"), "none"
    ),
    ("invoicing", "GetInvoicePDF"): Rule(("invoicing:GetInvoicePDF", "aws-portal:ViewBilling"), "none"),
    ("invoicing", "ListInvoiceUnits"): Rule(("invoicing:ListInvoiceUnits", "aws-portal:ViewBilling"), "none"),
}


class UnmappedCall(Exception):
    """A recorded operation RULES does not know."""


@dataclass(frozen=True)
class Target:
    """A resource as deployed: its ARN, and where its resource-based policy lives (None: it has none)."""

    arn: str
    owner: Any = None  # the template.Deployed that holds the resource
    logical_id: str | None = None
    account: str = ""  # the account that owns the resource ("" for actions without resource types)


class Where(Protocol):
    """Finds the deployed resource a request names (see replay.Archive)."""

    region: str

    def bucket(self, name: str) -> Target: ...

    def queue(self, url: str) -> Target: ...

    def table(self, name: str, index: str | None) -> Target: ...

    def bus(self, name: str) -> Target: ...

    def role(self, arn: str) -> Target: ...

    def key_of(self, target: Target) -> Target | None: ...

    def bucket_key_enabled(self, target: Target) -> bool: ...


@dataclass(frozen=True)
class Need:
    action: str
    target: Target
    mode: Mode
    because: str  # what in the request asks for it
    context: Mapping[str, Any] = field(default_factory=dict)


def rule_for(record: Mapping[str, Any]) -> Rule:
    key = (record["service"], record["operation"])
    if key not in RULES:
        raise UnmappedCall(
            f"{record['service']} {record['operation']} (called from {record.get('origin')}) is not in "
            "tests/iam/actions.py RULES: add the IAM actions it needs (Service Authorization Reference)"
        )
    return RULES[key]


def needs(record: Mapping[str, Any], where: Where) -> list[Need]:
    """Every IAM action the recorded request needs, on its deployed resource."""
    rule = rule_for(record)
    params: Mapping[str, Any] = record.get("params", {})
    service, operation = record["service"], record["operation"]
    actions = list(rule.actions)
    extra: list[Need] = []
    context: dict[str, Any] = {}
    if service == "s3":
        bucket = where.bucket(params["Bucket"])
        target = Target(f"{bucket.arn}/{params['Key']}", bucket.owner, bucket.logical_id, bucket.account)
        context.update(_s3_context(operation, params))
        if params.get("VersionId") and "s3:GetObject" in actions:
            actions[actions.index("s3:GetObject")] = "s3:GetObjectVersion"
        for parameter, action in (
            ("Tagging", "s3:PutObjectTagging"),
            ("ACL", "s3:PutObjectAcl"),
            ("ObjectLockMode", "s3:PutObjectRetention"),
            ("ObjectLockLegalHoldStatus", "s3:PutObjectLegalHold"),
        ):
            if params.get(parameter) and operation in ("PutObject", "CreateMultipartUpload"):
                actions.append(action)
        if operation == "HeadObject":
            extra.append(
                Need(
                    "s3:ListBucket",
                    bucket,
                    "same-account",
                    "HeadObject of a key that may not exist (404, not 403)",
                )
            )
    elif rule.on == "queue":
        target = where.queue(params["QueueUrl"])
    elif rule.on == "table":
        target = where.table(params["TableName"], params.get("IndexName"))
    elif rule.on == "role":
        target = where.role(params["RoleArn"])
        if params.get("ExternalId") is not None:
            context["sts:ExternalId"] = params["ExternalId"]
        if params.get("RoleSessionName"):
            context["sts:RoleSessionName"] = params["RoleSessionName"]
        if params.get("Tags") or params.get("TransitiveTagKeys"):
            actions.append("sts:TagSession")
        if params.get("SourceIdentity"):
            actions.append("sts:SetSourceIdentity")
    elif rule.on == "bus":
        buses = {entry.get("EventBusName") or "default" for entry in params.get("Entries", [])} or {"default"}
        return [
            Need("events:PutEvents", where.bus(bus), "same-account", f"an entry for bus {bus}")
            for bus in sorted(buses)
        ]
    else:
        target = Target("*")
    found = [
        Need(action, target, _mode(action, target), _because(operation, action, params), context)
        for action in actions
    ]
    key = where.key_of(target) if rule.kms else None
    if key is not None:
        found += [
            Need(
                action,
                key,
                "kms",
                f"{operation} on a resource encrypted with {key.logical_id}",
                _kms_context(service, target, where),
            )
            for action in rule.kms
        ]
    return found + extra


def _mode(action: str, target: Target) -> Mode:
    if action == "sts:AssumeRole":
        return "trust"
    return "same-account"


def _because(operation: str, action: str, params: Mapping[str, Any]) -> str:
    if action == "s3:PutObjectTagging":
        return f"{operation} sends Tagging"
    if action in ("s3:PutObjectAcl", "s3:PutObjectRetention", "s3:PutObjectLegalHold"):
        return f"{operation} sets {action.split(':')[1].removeprefix('PutObject')}"
    if action in ("sts:TagSession", "sts:SetSourceIdentity"):
        return f"{operation} passes session tags or a source identity"
    return operation


def _s3_context(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """S3's condition keys for this request (Service Authorization Reference, Amazon S3, condition keys)."""
    context: dict[str, Any] = {
        "s3:TlsVersion": "1.3",
        "s3:signatureversion": "AWS4-HMAC-SHA256",
        "s3:authType": "REST-HEADER",
    }
    if operation in _S3_OBJECT_CREATION:
        context["s3:ObjectCreationOperation"] = _S3_OBJECT_CREATION[operation]
    for parameter, key in (("IfNoneMatch", "s3:if-none-match"), ("IfMatch", "s3:if-match")):
        if params.get(parameter) is not None:
            context[key] = params[parameter]
    if params.get("ServerSideEncryption"):
        context["s3:x-amz-server-side-encryption"] = params["ServerSideEncryption"]
    if params.get("SSEKMSKeyId"):
        context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = params["SSEKMSKeyId"]
    tags = params.get("Tagging")
    if isinstance(tags, Mapping):
        context["s3:RequestObjectTagKeys"] = sorted(tags)
        context.update({f"s3:RequestObjectTag/{k}": v for k, v in tags.items()})
    return context


def _kms_context(service: str, target: Target, where: Where) -> dict[str, Any]:
    """What KMS sees when a service calls it for the principal (kms:ViaService, the encryption context)."""
    context: dict[str, Any] = {
        "kms:ViaService": f"{service}.{where.region}.amazonaws.com",
        "kms:CallerAccount": target.account,
    }
    if service == "s3":
        bucket_arn = target.arn.split("/", 1)[0]
        context["kms:EncryptionContext:aws:s3:arn"] = (
            bucket_arn if where.bucket_key_enabled(target) else target.arn
        )
    elif service == "sqs":
        context["kms:EncryptionContext:aws:sqs:arn"] = target.arn
    elif service == "dynamodb":
        context["kms:EncryptionContext:aws:dynamodb:tableName"] = target.arn.rsplit("table/", 1)[-1].split(
            "/"
        )[0]
        context["kms:EncryptionContext:aws:dynamodb:subscriberId"] = target.account
    return context
