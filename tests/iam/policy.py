"""A small IAM policy evaluator: does a set of resolved policy statements allow one request?

It follows the evaluation logic AWS documents ("Policy evaluation logic", IAM User Guide) for what our
templates hold: an explicit Deny in any applicable policy wins; otherwise a same-account request needs an
Allow in the identity policies or one in the resource policy that names the principal; a KMS key's policy
must allow the principal itself or the account's root (which lets IAM policies decide, and then they must
allow it too); a role's trust policy and the caller's identity policy must both allow sts:AssumeRole, as
must both sides of any other cross-account request.

Elements: Effect, Action/NotAction, Resource/NotResource (ARN wildcards per ARN segment), Principal/
NotPrincipal ("*", an account or its root, a role ARN, a service), and Condition with the operators below
(each with IfExists, and ForAnyValue:/ForAllValues: for multi-valued keys). An operator not listed here
raises UnsupportedCondition naming it and its statement: a new policy must never be judged by a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["same-account", "kms", "trust", "cross-account"]


class UnsupportedCondition(Exception):
    """A condition operator (or value) the evaluator does not implement."""


@dataclass(frozen=True)
class Statement:
    source: str  # the policy: "PipelineFetcherPermissions09D52CF1", "... key policy", "... trust policy"
    index: int
    sid: str | None
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    principal: Any  # None in an identity policy
    not_principal: bool
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]]

    @property
    def label(self) -> str:
        name = f"{self.sid!r}" if self.sid else f"#{self.index + 1}"
        return f"{self.source} statement {name}"

    def describe(self) -> str:
        """`Deny s3:PutObject on arn:... when Null s3:if-none-match=true`: the statement in one line."""
        actions = ("NotAction " if self.not_action else "") + ", ".join(self.actions)
        text = f"{self.effect} {actions}"
        if self.resources:
            text += " on " + ("all but " if self.not_resource else "") + ", ".join(self.resources)
        if self.conditions:
            text += " when " + " and ".join(
                f"{op} {key}={'|'.join(values)}"
                for op, block in self.conditions.items()
                for key, values in block.items()
            )
        return text


def statements_of(document: Mapping[str, Any], source: str) -> list[Statement]:
    """The statements of a resolved policy document."""
    raw = document.get("Statement", [])
    found = []
    for index, statement in enumerate([raw] if isinstance(raw, dict) else raw):
        not_action = "NotAction" in statement
        not_resource = "NotResource" in statement
        not_principal = "NotPrincipal" in statement
        resources = _strings(statement.get("NotResource" if not_resource else "Resource", "*"))
        found.append(
            Statement(
                source=source,
                index=index,
                sid=statement.get("Sid"),
                effect=str(statement["Effect"]),
                actions=_strings(statement.get("NotAction" if not_action else "Action", ())),
                not_action=not_action,
                resources=resources,
                not_resource=not_resource,
                principal=statement.get("NotPrincipal" if not_principal else "Principal"),
                not_principal=not_principal,
                conditions={
                    op: {key: _strings(values) for key, values in block.items()}
                    for op, block in statement.get("Condition", {}).items()
                },
            )
        )
    return found


@dataclass(frozen=True)
class Request:
    action: str
    resource: str  # an ARN, or "*" for actions without resource types
    principal: str  # the role's ARN
    account: str  # the principal's account
    context: Mapping[str, Any]  # condition keys -> values (str, bool, number, or a list of str)


# Matching ----------------------------------------------------------------------------------------------


def _strings(value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list | tuple) else [value]
    return tuple(("true" if v else "false") if isinstance(v, bool) else str(v) for v in values)


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """ARN matching as IAM does it: each of the six colon-separated parts on its own, with * and ?."""
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), arn.split(":", 5)
    return len(wanted) == len(given) == 6 and all(_glob(w, g) for w, g in zip(wanted, given, strict=True))


def action_matches(statement: Statement, action: str) -> bool:
    hit = any(_glob(pattern, action, ignore_case=True) for pattern in statement.actions)
    return hit != statement.not_action


def resource_matches(statement: Statement, resource: str) -> bool:
    hit = any(arn_matches(pattern, resource) or pattern == resource for pattern in statement.resources)
    return hit != statement.not_resource


def principal_matches(statement: Statement, request: Request) -> Literal["direct", "account", ""]:
    """How a resource policy's statement names the request's principal: itself (or everyone), its account
    (which leaves the decision to that account's IAM policies), or not at all."""
    if statement.principal is None:
        return "direct"
    how = _principal(statement.principal, request)
    if statement.not_principal:
        return "" if how else "direct"
    return how


def _principal(spec: Any, request: Request) -> Literal["direct", "account", ""]:
    if spec == "*":
        return "direct"
    if not isinstance(spec, Mapping):
        raise UnsupportedCondition(f"principal {spec!r}")
    named = _strings(spec.get("AWS", ()))
    if "*" in named or request.principal in named:
        return "direct"
    roots = {request.account, f"arn:aws:iam::{request.account}:root"}
    return "account" if roots & set(named) else ""


# Conditions --------------------------------------------------------------------------------------------

_STRING = {
    "StringEquals": (False, False),
    "StringNotEquals": (True, False),
    "StringEqualsIgnoreCase": (False, True),
    "StringNotEqualsIgnoreCase": (True, True),
}
_LIKE = {"StringLike": False, "StringNotLike": True, "ArnEquals": False, "ArnLike": False}
_LIKE_NOT = {"ArnNotEquals", "ArnNotLike"}
_NUMERIC = {
    "NumericEquals": lambda a, b: a == b,
    "NumericNotEquals": lambda a, b: a != b,
    "NumericLessThan": lambda a, b: a < b,
    "NumericLessThanEquals": lambda a, b: a <= b,
    "NumericGreaterThan": lambda a, b: a > b,
    "NumericGreaterThanEquals": lambda a, b: a >= b,
}
_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
}


def conditions_hold(statement: Statement, context: Mapping[str, Any]) -> bool:
    """Every operator's every key holds (AND); a key holds if any of its values matches (OR)."""
    lowered = {key.lower(): value for key, value in context.items()}
    for operator, block in statement.conditions.items():
        for key, values in block.items():
            if not _holds(operator, key.lower(), values, lowered, statement):
                return False
    return True


def _holds(
    operator: str, key: str, values: Sequence[str], context: Mapping[str, Any], statement: Statement
) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    present = key in context and context[key] is not None
    if base == "Null":
        if not all(v in ("true", "false") for v in values):
            raise UnsupportedCondition(f"Null {key}={values} in {statement.label}")
        return any((v == "true") != present for v in values)
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedCondition(f"{operator} in {statement.label}")
    if not present:
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return if_exists or base in _NEGATED
    given = context[key]
    items = [_one_string(v) for v in given] if isinstance(given, list | tuple) else [_one_string(given)]
    if qualifier == "ForAllValues":
        return all(_match(base, item, values, statement) for item in items)
    if qualifier == "ForAnyValue" or len(items) == 1:
        return any(_match(base, item, values, statement) for item in items)
    raise UnsupportedCondition(f"{operator} on the multi-valued key {key} in {statement.label}")


def _one_string(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _match(base: str, given: str, values: Sequence[str], statement: Statement) -> bool:
    if base in _STRING:
        negate, fold = _STRING[base]
        equal = any((v.lower() == given.lower()) if fold else v == given for v in values)
        return equal != negate
    if base in _LIKE:
        hit = any(arn_matches(v, given) if base.startswith("Arn") else _glob(v, given) for v in values)
        return hit != _LIKE[base]
    if base in _LIKE_NOT:
        return not any(arn_matches(v, given) for v in values)
    if base == "Bool":
        return any(v.lower() == given.lower() for v in values)
    if base in _NUMERIC:
        try:
            return any(_NUMERIC[base](float(given), float(v)) for v in values)
        except ValueError:
            return False
    raise UnsupportedCondition(f"{base} in {statement.label}: add it to tests/iam/policy.py")


# Decisions ---------------------------------------------------------------------------------------------


def applies(statement: Statement, request: Request) -> bool:
    """The statement covers the request: action, resource, principal (resource policies) and conditions."""
    return (
        action_matches(statement, request.action)
        and resource_matches(statement, request.resource)
        and principal_matches(statement, request) != ""
        and conditions_hold(statement, request.context)
    )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explanation: str  # why not (empty when allowed)
    allowing: tuple[Statement, ...]  # every Allow that applies (identity and resource policy)
    denying: Statement | None


def decide(
    request: Request, identity: Iterable[Statement], resource: Iterable[Statement] = (), *, mode: Mode
) -> Decision:
    identity, resource = list(identity), list(resource)
    for statement in identity + resource:
        if statement.effect == "Deny" and applies(statement, request):
            return Decision(False, f"denied by {statement.label}: {statement.describe()}", (), statement)
    own = tuple(s for s in identity if s.effect == "Allow" and applies(s, request))
    theirs = [s for s in resource if s.effect == "Allow" and applies(s, request)]
    direct = tuple(s for s in theirs if principal_matches(s, request) == "direct")
    delegated = tuple(s for s in theirs if principal_matches(s, request) == "account")
    if mode == "same-account":
        allowed, missing = bool(own or direct), "no statement allows it"
    elif mode == "kms":
        allowed = bool(direct or (delegated and own))
        missing = (
            "the key policy neither allows the role nor lets IAM policies decide (an Allow for the account)"
            if not delegated
            else "no identity statement allows it (the key policy lets IAM policies decide)"
        )
    else:
        allowed = bool((direct or delegated) and own)
        side = "trust" if mode == "trust" else "resource"
        missing = (
            f"the {side} policy does not allow this principal"
            if not (direct or delegated)
            else "no identity statement allows it"
        )
        if not (direct or delegated) and not own:
            missing = f"neither an identity statement nor the {side} policy allows it"
    if allowed:
        return Decision(True, "", own + direct + delegated, None)
    near = near_misses(request, identity + resource)
    return Decision(False, missing + (f"; nearest: {near}" if near else ""), (), None)


def near_misses(request: Request, statements: Iterable[Statement]) -> str:
    """The Allow statements for this action that do not cover the request, and why, for a message."""
    notes = []
    for statement in statements:
        if statement.effect != "Allow" or not action_matches(statement, request.action):
            continue
        if not resource_matches(statement, request.resource):
            notes.append(f"{statement.label} allows it only on {', '.join(statement.resources)}")
        elif principal_matches(statement, request) == "":
            notes.append(f"{statement.label} names other principals ({statement.principal})")
        elif not conditions_hold(statement, request.context):
            notes.append(f"{statement.label} only when {statement.describe().split(' when ', 1)[-1]}")
    return "; ".join(notes)
