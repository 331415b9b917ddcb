"""A synthesized CloudFormation template as deployed: intrinsics resolved, policies collected per principal.

`Deployed(template, account=..., region=...)` stands for one deployment of a template. Each resource gets a
physical name (its name property if the template sets one, else one derived from its logical id), and
`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split` and `Fn::If` (with the template's
Conditions and the given Parameters) resolve against those names as CloudFormation would resolve them
against the real ones. Anything else fails loudly, naming what to add here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.iam.policy import Statement, statements_of

_PSEUDO_STATIC = {"AWS::URLSuffix": "amazonaws.com", "AWS::NotificationARNs": []}
_NO_VALUE = object()
_SUB = re.compile(r"\$\{([^}]*)\}")


class TemplateError(Exception):
    """The template holds something this model cannot resolve; the message says what."""


# The name property of each type, and how its Ref and Fn::GetAtt resolve from (name, account, region).
_NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Events::Rule": "Name",
    "AWS::Events::EventBus": "Name",
}


@dataclass
class Deployed:
    """One deployment of `template` in `account` and `region` (Parameters from `parameters`)."""

    template: dict[str, Any]
    account: str
    region: str
    partition: str = "aws"
    stack_name: str = "Stack"
    parameters: Mapping[str, str] = field(default_factory=dict)
    label: str = "the stack"  # how messages name this template ("the archive stack", "the payer role")
    names: Mapping[str, str] = field(default_factory=dict)  # physical names given (logical id -> name)

    def __post_init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        known = self.template.get("Parameters", {})
        unknown = sorted(set(self.parameters) - set(known))
        if unknown:
            raise TemplateError(f"{self.label} has no parameter {', '.join(unknown)}")
        self._names: dict[str, str] = dict(self.names)

    # Names and ARNs --------------------------------------------------------------------------------

    def type_of(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise TemplateError(f"{self.label} has no resource {logical_id}")
        return str(self.resources[logical_id]["Type"])

    def name(self, logical_id: str) -> str:
        """The resource's physical name: its name property, resolved, or one made from its logical id."""
        if logical_id not in self._names:
            cfn_type = self.type_of(logical_id)
            prop = _NAME_PROPERTY.get(cfn_type)
            given = self.resources[logical_id].get("Properties", {}).get(prop) if prop else None
            if given is not None:
                self._names[logical_id] = str(self.resolve(given))
            elif cfn_type == "AWS::S3::Bucket":  # bucket names are lower-case
                self._names[logical_id] = f"{self.stack_name}-{logical_id}".lower()[:63]
            elif cfn_type == "AWS::KMS::Key":
                self._names[logical_id] = f"key-{logical_id.lower()}"
            else:
                self._names[logical_id] = f"{self.stack_name}-{logical_id}"[:64]
        return self._names[logical_id]

    def ref(self, logical_id: str) -> Any:
        cfn_type = self.type_of(logical_id)
        if cfn_type == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.name(logical_id)}"
        if cfn_type == "AWS::SNS::Topic":
            return self.arn(logical_id)
        return self.name(logical_id)

    def arn(self, logical_id: str) -> str:
        cfn_type, name = self.type_of(logical_id), self.name(logical_id)
        p, r, a = self.partition, self.region, self.account
        arns = {
            "AWS::S3::Bucket": f"arn:{p}:s3:::{name}",
            "AWS::SQS::Queue": f"arn:{p}:sqs:{r}:{a}:{name}",
            "AWS::DynamoDB::Table": f"arn:{p}:dynamodb:{r}:{a}:table/{name}",
            "AWS::IAM::Role": f"arn:{p}:iam::{a}:role/{name}",
            "AWS::KMS::Key": f"arn:{p}:kms:{r}:{a}:key/{name}",
            "AWS::Lambda::Function": f"arn:{p}:lambda:{r}:{a}:function:{name}",
            "AWS::Logs::LogGroup": f"arn:{p}:logs:{r}:{a}:log-group:{name}:*",
            "AWS::SNS::Topic": f"arn:{p}:sns:{r}:{a}:{name}",
            "AWS::Events::Rule": f"arn:{p}:events:{r}:{a}:rule/{name}",
            "AWS::Events::EventBus": f"arn:{p}:events:{r}:{a}:event-bus/{name}",
        }
        if cfn_type not in arns:
            raise TemplateError(
                f"no ARN for {cfn_type} ({logical_id}): add its form to tests/iam/template.py"
            )
        return arns[cfn_type]

    def attribute(self, logical_id: str, attribute: str) -> Any:
        cfn_type = self.type_of(logical_id)
        if attribute == "Arn":
            return self.arn(logical_id)
        if cfn_type == "AWS::SQS::Queue" and attribute == "QueueName":
            return self.name(logical_id)
        if cfn_type == "AWS::SQS::Queue" and attribute == "QueueUrl":
            return self.ref(logical_id)
        if cfn_type == "AWS::KMS::Key" and attribute == "KeyId":
            return self.name(logical_id)
        raise TemplateError(
            f"cannot resolve Fn::GetAtt {logical_id}.{attribute} ({cfn_type}): add it to "
            "tests/iam/template.py"
        )

    def logical_id_of(self, cfn_type: str, name: str) -> str | None:
        """The resource of this type whose physical name is `name`."""
        found = [lid for lid, r in self.resources.items() if r["Type"] == cfn_type and self.name(lid) == name]
        return found[0] if len(found) == 1 else None

    def key_of(self, logical_id: str) -> str | None:
        """The customer-managed key (logical id) that encrypts a bucket, queue or table, if any."""
        props = self.resources[logical_id].get("Properties", {})
        candidates: list[Any] = [props.get("KmsMasterKeyId")]
        candidates.append(props.get("SSESpecification", {}).get("KMSMasterKeyId"))
        for rule in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
            candidates.append(rule.get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID"))
        for candidate in candidates:
            if isinstance(candidate, dict):
                target = candidate.get("Ref") or (candidate.get("Fn::GetAtt") or [None])[0]
                if target in self.resources and self.type_of(target) == "AWS::KMS::Key":
                    return str(target)
        return None

    def bucket_key_enabled(self, logical_id: str) -> bool:
        props = self.resources[logical_id].get("Properties", {})
        rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        return any(rule.get("BucketKeyEnabled") for rule in rules)

    # Intrinsics ------------------------------------------------------------------------------------

    def resolve(self, value: Any, refs: Mapping[str, Any] | None = None) -> Any:
        """`value` with every intrinsic resolved; `refs` overrides what a logical id's Ref gives."""
        resolved = self._resolve(value, refs or {})
        return None if resolved is _NO_VALUE else resolved

    def _resolve(self, value: Any, refs: Mapping[str, Any]) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v, refs) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(name, arg)] = value.items()
            if name == "Ref":
                return self._ref(str(arg), refs)
            if name == "Condition":
                return self.condition(str(arg))
            if name.startswith("Fn::"):
                return self._function(name, arg, refs)
        out = {k: self._resolve(v, refs) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _NO_VALUE}

    def _ref(self, target: str, refs: Mapping[str, Any]) -> Any:
        if target in refs:
            return refs[target]
        if target == "AWS::NoValue":
            return _NO_VALUE
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack_name,
            **_PSEUDO_STATIC,
        }
        if target in pseudo:
            return pseudo[target]
        parameters = self.template.get("Parameters", {})
        if target in parameters:
            if target in self.parameters:
                return self.parameters[target]
            if "Default" in parameters[target]:
                return parameters[target]["Default"]
            raise TemplateError(f"{self.label}: parameter {target} has no default and no value was given")
        return self.ref(target)

    def _function(self, name: str, arg: Any, refs: Mapping[str, Any]) -> Any:
        if name == "Fn::GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.attribute(str(logical_id), str(attribute))
        if name == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(v) for v in self._resolve(items, refs))
        if name == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            local = {k: self._resolve(v, refs) for k, v in variables.items()}
            return _SUB.sub(lambda m: self._substitute(m.group(1), local, refs), str(text))
        if name == "Fn::Select":
            index, items = arg
            return self._resolve(items, refs)[int(self._resolve(index, refs))]
        if name == "Fn::Split":
            separator, text = arg
            return str(self._resolve(text, refs)).split(str(separator))
        if name == "Fn::If":
            condition, when_true, when_false = arg
            return self._resolve(when_true if self.condition(str(condition)) else when_false, refs)
        if name in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._boolean(name, arg, refs)
        raise TemplateError(f"{self.label}: cannot resolve {name}: add it to tests/iam/template.py")

    def _substitute(self, variable: str, local: Mapping[str, Any], refs: Mapping[str, Any]) -> str:
        if variable.startswith("!"):
            return "${" + variable[1:] + "}"
        if variable in local:
            return str(local[variable])
        if "." in variable and not variable.startswith("AWS::"):
            logical_id, attribute = variable.split(".", 1)
            return str(self._function("Fn::GetAtt", [logical_id, attribute], refs))
        return str(self._ref(variable, refs))

    def _boolean(self, name: str, arg: Any, refs: Mapping[str, Any]) -> bool:
        values = [self._resolve(v, refs) for v in arg]
        if name == "Fn::Equals":
            return bool(values[0] == values[1])
        if name == "Fn::Not":
            return not values[0]
        if name == "Fn::And":
            return all(values)
        return any(values)

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"{self.label} has no condition {name}")
        return bool(self._resolve(conditions[name], {}))

    def exists(self, logical_id: str) -> bool:
        """False for a resource whose Condition is false in this deployment."""
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(str(condition))

    # Policies --------------------------------------------------------------------------------------

    def role_policies(self, role: str) -> list[Statement]:
        """Every statement of the role's identity policies: inline, AWS::IAM::Policy and ::RolePolicy."""
        props = self.resources[role].get("Properties", {})
        if props.get("ManagedPolicyArns"):
            raise TemplateError(
                f"{role} has managed policies {props['ManagedPolicyArns']}: their statements are not in the "
                "template, so the replay cannot evaluate them"
            )
        found: list[Statement] = []
        for policy in props.get("Policies", []):
            source = f"{role} inline policy {policy.get('PolicyName')!r}"
            found += statements_of(self.resolve(policy["PolicyDocument"]), source)
        for logical_id, resource in self.resources.items():
            attached = resource.get("Properties", {})
            if resource["Type"] == "AWS::IAM::Policy":
                roles = attached.get("Roles", [])
            elif resource["Type"] == "AWS::IAM::RolePolicy":
                roles = [attached.get("RoleName")]
            else:
                continue
            if {"Ref": role} in roles and self.exists(logical_id):
                found += statements_of(self.resolve(attached["PolicyDocument"]), logical_id)
        return found

    def trust_policy(self, role: str) -> list[Statement]:
        document = self.resources[role]["Properties"]["AssumeRolePolicyDocument"]
        return statements_of(self.resolve(document), f"{role} trust policy")

    def resource_policy(self, logical_id: str) -> list[Statement]:
        """The resource-based policy that applies to a bucket, queue, table or key ([] if it has none)."""
        cfn_type = self.type_of(logical_id)
        props = self.resources[logical_id].get("Properties", {})
        if cfn_type == "AWS::KMS::Key":
            return statements_of(self.resolve(props["KeyPolicy"]), f"{logical_id} key policy")
        if cfn_type == "AWS::DynamoDB::Table" and "ResourcePolicy" in props:
            document = self.resolve(props["ResourcePolicy"]["PolicyDocument"])
            return statements_of(document, f"{logical_id} resource policy")
        found: list[Statement] = []
        for policy_id, resource in self.resources.items():
            attached = resource.get("Properties", {})
            if resource["Type"] == "AWS::S3::BucketPolicy":
                targets = [attached.get("Bucket")]
            elif resource["Type"] == "AWS::SQS::QueuePolicy":
                targets = attached.get("Queues", [])
            else:
                continue
            if {"Ref": logical_id} in targets and self.exists(policy_id):
                found += statements_of(self.resolve(attached["PolicyDocument"]), policy_id)
        return found

    def function_role(self, handler: str) -> str:
        """The logical id of the role of the function with this handler."""
        functions = [
            r
            for r in self.resources.values()
            if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler
        ]
        if len(functions) != 1:
            raise TemplateError(f"{self.label} has {len(functions)} functions with handler {handler}")
        role = functions[0]["Properties"]["Role"]
        target = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None
        if target not in self.resources:
            raise TemplateError(f"the role of {handler} is not a role of {self.label}: {role}")
        return str(target)

    def function(self, handler: str) -> tuple[str, dict[str, Any]]:
        [(logical_id, resource)] = [
            (lid, r)
            for lid, r in self.resources.items()
            if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler
        ]
        return logical_id, resource
