"""A deliberately tiny evaluator of the synthesized resource policies, for the trust-boundary tests.

It answers one question per request: does an explicit Deny of this policy apply, or an Allow match?
It knows what these templates use: Action and Resource (exact or `*` wildcards), Principal `*` or
AWS account/ARN, and the condition operators Null, Bool, StringEquals, ArnEquals, ArnNotEquals and
NumericLessThan. Besides policies, SQS's RedriveAllowPolicy: which queues may move messages into a queue.
CloudFormation references are resolved through `names` (logical id or pseudo parameter -> value).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    principal_arn: str
    context: dict[str, str | None] = field(default_factory=dict)  # condition keys; None: absent

    def __post_init__(self) -> None:
        # Every request here is made as the SDK makes it: over TLS 1.3.
        self.context.setdefault("aws:SecureTransport", "true")
        self.context.setdefault("s3:TlsVersion", "1.3")


def resolve(value: Any, names: dict[str, str]) -> Any:
    """Fn::GetAtt, Ref, Fn::Join and Fn::Sub (with its variables) as plain strings."""
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return names[value["Ref"]]
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return names[f"{logical_id}.{attribute}"]
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, names)) for part in parts)
    if "Fn::Sub" in value:
        text, variables = value["Fn::Sub"]
        scope = {**names, **{k: resolve(v, names) for k, v in variables.items()}}
        for name, replacement in scope.items():
            text = text.replace("${" + name + "}", str(replacement))
        return text
    return {k: resolve(v, names) for k, v in value.items()}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, str(p)) for p in _listed(patterns))


def _condition_holds(conditions: dict[str, dict[str, Any]], request: Request) -> bool:
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            actual = request.context.get(key)
            wanted = [str(v) for v in _listed(expected)]
            if operator == "Null":
                holds = (actual is None) == (wanted[0] == "true")
            elif operator in ("Bool", "StringEquals", "ArnEquals"):
                holds = actual is not None and actual in wanted
            elif operator == "ArnNotEquals":
                holds = actual is None or actual not in wanted
            elif operator == "NumericLessThan":
                holds = actual is not None and float(actual) < float(wanted[0])
            else:
                raise NotImplementedError(operator)
            if not holds:
                return False
    return True


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*" or principal == {"AWS": "*"}:
        return True
    arns = _listed(principal.get("AWS", [])) if isinstance(principal, dict) else []
    for arn in arns:
        if arn == request.principal_arn:
            return True
        if str(arn).endswith(":root") and request.principal_arn.split(":")[4] == str(arn).split(":")[4]:
            return True
    return False


def effects(statements: list[dict[str, Any]], request: Request, names: dict[str, str]) -> set[str]:
    """The effects ('Allow', 'Deny') of every statement that applies to `request`."""
    found = set()
    for statement in statements:
        statement = resolve(statement, names)
        if "Principal" in statement and not _principal_matches(statement["Principal"], request):
            continue
        if not _matches(statement["Action"], request.action):
            continue
        if "Resource" in statement and not _matches(statement["Resource"], request.resource):
            continue
        if _condition_holds(statement.get("Condition", {}), request):
            found.add(statement["Effect"])
    return found


def may_redrive_into(queue: dict[str, Any], source_queue_arn: str, names: dict[str, str]) -> bool:
    """Whether SQS lets a queue of the same account and region name `queue` as its dead-letter queue.

    As SQS documents RedriveAllowPolicy: absent or `allowAll`, any such queue; `denyAll`, none;
    `byQueue`, those in `sourceQueueArns`."""
    policy = resolve(queue["Properties"].get("RedriveAllowPolicy"), names) or {
        "redrivePermission": "allowAll"
    }
    permission = policy.get("redrivePermission", "byQueue" if "sourceQueueArns" in policy else "allowAll")
    if permission == "allowAll":
        return True
    if permission == "denyAll":
        return False
    return source_queue_arn in _listed(policy.get("sourceQueueArns", []))
