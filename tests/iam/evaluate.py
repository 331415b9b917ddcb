"""A small offline evaluator of a synthesized template's policies, for one request of one function.

Same-account evaluation as IAM documents it (Policy evaluation logic): an explicit Deny in any policy
that applies wins; otherwise the request is allowed if the principal's identity policies or the
resource's policy allow it; a KMS key also needs its key policy to allow it, directly or by delegating
to IAM (the account root as principal). A role assumed across accounts needs the payer role's trust to
allow `sts:AssumeRole` and, once assumed, its own policies to allow the call.

It knows the forms the templates use: Action/NotAction and Resource with `*`/`?` wildcards, Principal
`*`/AWS ARNs/account roots/services, Fn::GetAtt, Ref, Fn::Join, Fn::Sub and Fn::If/conditions resolved
through `Names`, and the condition operators StringEquals, StringNotEquals, StringLike, ArnEquals, ArnLike,
ArnNotEquals, ArnNotLike, Bool, Null and NumericLessThan, each with IfExists. Anything else raises, so a
new construct in a template is examined rather than silently misjudged.

Why not a library: the maintained offline evaluators on PyPI (parliament, policy_sentry, cloudsplaining)
lint or classify policies; none decides a request against identity and resource policies together with
explicit Denies and condition keys. This file is the part of that we need.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

Statement = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    why: str  # the statement that denies, or what is missing


def resolve(value: Any, refs: dict[str, Any]) -> Any:
    """Replace CloudFormation intrinsics with plain values (`refs`: logical id, `Id.Attr` or pseudo)."""
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return refs[value["Ref"]]
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return refs[f"{logical_id}.{attribute}"]
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, refs)) for part in parts)
    if "Fn::Sub" in value:
        text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        scope = {**refs, **{k: resolve(v, refs) for k, v in variables.items()}}
        for name, replacement in scope.items():
            if isinstance(replacement, str):
                text = text.replace("${" + name + "}", replacement)
        return text
    if "Fn::If" in value:
        condition, yes, no = value["Fn::If"]
        return resolve(yes if refs.get(f"Condition:{condition}", False) else no, refs)
    if any(key.startswith("Fn::") for key in value):
        raise NotImplementedError(f"intrinsic {next(iter(value))}")
    return {k: resolve(v, refs) for k, v in value.items()}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _arn_like(pattern: str, value: str) -> bool:
    # Each ARN segment is matched on its own (a wildcard never crosses a colon of the first five)
    left, right = pattern.split(":", 5), value.split(":", 5)
    return len(left) == len(right) and all(_like(p, v) for p, v in zip(left, right, strict=True))


_OPERATORS = {
    "StringEquals": lambda wanted, actual: actual in wanted,
    "StringNotEquals": lambda wanted, actual: actual not in wanted,
    "StringLike": lambda wanted, actual: any(_like(w, actual) for w in wanted),
    "ArnEquals": lambda wanted, actual: actual in wanted,
    "ArnLike": lambda wanted, actual: any(_arn_like(w, actual) for w in wanted),
    "ArnNotEquals": lambda wanted, actual: actual not in wanted,
    "ArnNotLike": lambda wanted, actual: not any(_arn_like(w, actual) for w in wanted),
    "Bool": lambda wanted, actual: actual.lower() in [w.lower() for w in wanted],
    "NumericLessThan": lambda wanted, actual: float(actual) < float(wanted[0]),
}
_NEGATED = {"StringNotEquals", "ArnNotEquals", "ArnNotLike"}


def conditions_hold(conditions: dict[str, dict[str, Any]], context: dict[str, str | None]) -> bool:
    for operator, tests in conditions.items():
        base = operator.removesuffix("IfExists")
        for key, expected in tests.items():
            wanted = [str(v).lower() if isinstance(v, bool) else str(v) for v in _listed(expected)]
            actual = context.get(key)
            if base == "Null":
                holds = (actual is None) == (wanted[0] == "true")
            elif base not in _OPERATORS:
                raise NotImplementedError(f"condition operator {operator}")
            elif actual is None:
                # A missing key: IfExists or a negated operator hold; the others do not
                holds = operator.endswith("IfExists") or base in _NEGATED
            else:
                holds = _OPERATORS[base](wanted, actual)
            if not holds:
                return False
    return True


def _action_matches(statement: Statement, action: str) -> bool:
    if "NotAction" in statement:
        return not any(_like(a.lower(), action.lower()) for a in _listed(statement["NotAction"]))
    return any(_like(a.lower(), action.lower()) for a in _listed(statement["Action"]))


def _resource_matches(statement: Statement, resource: str) -> bool:
    if "NotResource" in statement:
        return not any(_like(r, resource) for r in _listed(statement["NotResource"]))
    return "Resource" not in statement or any(_like(r, resource) for r in _listed(statement["Resource"]))


def principal_matches(statement: Statement, principal: str, account: str) -> bool:
    given = statement.get("Principal")
    if given is None:  # an identity policy: it applies to its own principal
        return True
    if given == "*":
        return True
    for kind, values in given.items():
        for value in _listed(values):
            if kind == "AWS" and value in ("*", principal):
                return True
            if kind == "AWS" and value in (f"arn:aws:iam::{account}:root", account):
                return principal.split(":")[4] == account
    return False


def applies(
    statement: Statement, action: str, resource: str, principal: str, context: dict[str, Any]
) -> bool:
    account = principal.split(":")[4] if principal.startswith("arn:") else ""
    return (
        principal_matches(statement, principal, account)
        and _action_matches(statement, action)
        and _resource_matches(statement, resource)
        and conditions_hold(statement.get("Condition", {}), context)
    )


def decide(
    action: str,
    resource: str,
    principal: str,
    context: dict[str, str | None],
    identity: list[Statement],
    resource_policy: list[Statement],
    key_policy: list[Statement] | None = None,
) -> Verdict:
    """One request, evaluated (statements already resolved)."""
    everything = [("identity", s) for s in identity] + [("resource", s) for s in resource_policy]
    everything += [("key", s) for s in key_policy or []]
    for where, statement in everything:
        if statement["Effect"] == "Deny" and applies(statement, action, resource, principal, context):
            return Verdict(False, f"denied by {where} statement {statement.get('Sid', statement)}")
    allowed_by = [
        (where, s)
        for where, s in everything
        if s["Effect"] == "Allow" and applies(s, action, resource, principal, context)
    ]
    if key_policy is not None:
        in_key = [s for where, s in allowed_by if where == "key"]
        delegates = any(
            s["Effect"] == "Allow" and _delegates_to_iam(s, principal) and _action_matches(s, action)
            for s in key_policy
        )
        by_identity = any(where == "identity" for where, _ in allowed_by)
        if not in_key and not (delegates and by_identity):
            return Verdict(False, f"no key policy statement allows {action} (nor delegates it to IAM)")
        return Verdict(True, "allowed")
    if not allowed_by:
        return Verdict(False, f"no statement allows {action} on {resource}")
    return Verdict(True, "allowed")


def _delegates_to_iam(statement: Statement, principal: str) -> bool:
    account = principal.split(":")[4]
    aws = [str(p) for p in _listed((statement.get("Principal") or {}).get("AWS", []))]
    return f"arn:aws:iam::{account}:root" in aws or account in aws
