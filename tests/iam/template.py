"""A synthesized template read as IAM sees a deployed stack: who each function is, what its policies say,
what each resource's policy says, and the payer role's policies and trust."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from tests.iam.actions import Names
from tests.iam.evaluate import Statement, resolve

ARCHIVE_ACCOUNT = "999999999999"  # the sandbox's base credentials act as this account

_ARN_FORMS = {
    "AWS::S3::Bucket": ("arn:{p}:s3:::{id}", "{id}"),
    "AWS::SQS::Queue": ("arn:{p}:sqs:{r}:{a}:{id}", "https://sqs.{r}.amazonaws.com/{a}/{id}"),
    "AWS::DynamoDB::Table": ("arn:{p}:dynamodb:{r}:{a}:table/{id}", "{id}"),
    "AWS::KMS::Key": ("arn:{p}:kms:{r}:{a}:key/{id}", "{id}"),
    "AWS::Logs::LogGroup": ("arn:{p}:logs:{r}:{a}:log-group:{id}:*", "{id}"),
    "AWS::SNS::Topic": ("arn:{p}:sns:{r}:{a}:{id}", "arn:{p}:sns:{r}:{a}:{id}"),
    "AWS::Lambda::Function": ("arn:{p}:lambda:{r}:{a}:function:{id}", "{id}"),
}


@dataclass
class Deployed:
    """One template, with the names a deployment gives its resources."""

    template: dict[str, Any]
    region: str
    account: str = ARCHIVE_ACCOUNT
    parameters: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        p, r, a = "aws", self.region, self.account
        refs: dict[str, Any] = {
            "AWS::Partition": p,
            "AWS::Region": r,
            "AWS::AccountId": a,
            "AWS::URLSuffix": "amazonaws.com",
            **self.parameters,
        }
        for logical_id, resource in self.template["Resources"].items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::IAM::Role":
                name = props.get("RoleName", logical_id)
                name = name if isinstance(name, str) else resolve(name, refs)
                refs[f"{logical_id}.Arn"] = f"arn:{p}:iam::{a}:role/{name}"
                refs[logical_id] = name
                continue
            arn, ref = _ARN_FORMS.get(kind, ("arn:{p}:unknown:{r}:{a}:{id}", "{id}"))
            refs[f"{logical_id}.Arn"] = arn.format(p=p, r=r, a=a, id=logical_id)
            refs[logical_id] = ref.format(p=p, r=r, a=a, id=logical_id)
        for name, condition in self.template.get("Conditions", {}).items():
            if "Fn::Equals" in condition:
                left, right = (resolve(v, refs) for v in condition["Fn::Equals"])
                refs[f"Condition:{name}"] = left == right
        self.refs = refs

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def logical_id(self, kind: str, prefix: str) -> str:
        [found] = [k for k in self.resources(kind) if k.startswith(prefix)]
        return found

    def arn(self, logical_id: str) -> str:
        return str(self.refs[f"{logical_id}.Arn"])

    def role(self, role_name: str) -> str:
        """The logical id of the role with this name."""
        [found] = [k for k, v in self.resources("AWS::IAM::Role").items() if self.refs[k] == role_name]
        return found

    def identity(self, role_logical_id: str) -> list[Statement]:
        """Every statement of the role's own policies and of the policies attached to it."""
        role = self.template["Resources"][role_logical_id]
        documents = [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
        for kind in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy"):
            for resource in self.resources(kind).values():
                condition = resource.get("Condition")
                if condition and not self.refs.get(f"Condition:{condition}", False):
                    continue
                props = resource["Properties"]
                roles = props.get("Roles") or [props.get("RoleName")]
                if {"Ref": role_logical_id} in roles:
                    documents.append(props["PolicyDocument"])
        return [resolve(s, self.refs) for doc in documents for s in doc["Statement"]]

    def trust(self, role_logical_id: str) -> list[Statement]:
        document = self.template["Resources"][role_logical_id]["Properties"]["AssumeRolePolicyDocument"]
        return [resolve(s, self.refs) for s in document["Statement"]]

    def resource_policy(self, arn: str) -> list[Statement]:
        """The bucket or queue policy that governs `arn` (an object or queue ARN), if any."""
        found: list[Statement] = []
        for resource in self.resources("AWS::S3::BucketPolicy").values():
            bucket = f"arn:aws:s3:::{resolve(resource['Properties']['Bucket'], self.refs)}"
            if arn == bucket or arn.startswith(bucket + "/"):
                found += resource["Properties"]["PolicyDocument"]["Statement"]
        for resource in self.resources("AWS::SQS::QueuePolicy").values():
            urls = resolve(resource["Properties"]["Queues"], self.refs)
            arns = [self._queue_arn(url) for url in urls]
            if arn in arns:
                found += resource["Properties"]["PolicyDocument"]["Statement"]
        return [resolve(s, self.refs) for s in found]

    def key_policy(self, arn: str) -> list[Statement] | None:
        for logical_id, resource in self.resources("AWS::KMS::Key").items():
            if self.arn(logical_id) == arn:
                return [resolve(s, self.refs) for s in resource["Properties"]["KeyPolicy"]["Statement"]]
        return None

    def _queue_arn(self, url: str) -> str:
        name = url.rsplit("/", 1)[-1]
        return f"arn:aws:sqs:{self.region}:{self.account}:{name}"

    def without(self, sid: str) -> Deployed:
        """A copy with the identity statement `sid` removed (the mutation check)."""
        template = copy.deepcopy(self.template)
        removed = 0
        for resource in template["Resources"].values():
            document = resource.get("Properties", {}).get("PolicyDocument")
            if resource["Type"] == "AWS::IAM::Policy" and document:
                kept = [s for s in document["Statement"] if s.get("Sid") != sid]
                removed += len(document["Statement"]) - len(kept)
                document["Statement"] = kept
        assert removed, f"no statement {sid} to remove"
        return Deployed(template, self.region, self.account, self.parameters)


def names_for(stack: Deployed, *, bucket: str, table: str, queues: dict[str, str], kms: bool) -> Names:
    """How the sandbox's names (its bucket, table and queue URLs) map onto the template's resources."""
    queue_ids = {
        url: stack.arn(stack.logical_id("AWS::SQS::Queue", prefix)) for prefix, url in queues.items()
    }
    key = stack.arn(stack.logical_id("AWS::KMS::Key", "EncryptionKey")) if kms else None
    return Names(
        partition="aws",
        region=stack.region,
        account=stack.account,
        bucket=stack.arn(stack.logical_id("AWS::S3::Bucket", "StorageArchiveBucket")),
        table=stack.arn(stack.logical_id("AWS::DynamoDB::Table", "StorageLedgerTable")),
        queues=queue_ids,
        key=key,
        local_bucket=bucket,
        local_table=table,
    )
