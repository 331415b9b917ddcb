"""Replay recorded AWS requests against a synthesized stack's policies; list what is refused or unused.

`Archive` (tests/iam/deployment.py) stands for one deployment of the archive stack's template (and of
the payer-role template in each source role's account). `replay(records, archive)` maps each record to
the IAM actions it needs (tests/iam/actions.py), evaluates each against the principal's identity
policies and the resource's policy (tests/iam/policy.py), and returns a `Report`: the findings (a call
that would be refused, naming the call, the code that made it and the statement that denies or the one
that is missing) and the grants nothing needed (the converse).

What Lambda itself does with a function's role (deployment.Archive.lambda_needs) is replayed too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tests.iam.actions import Need, UnmappedCall, needs
from tests.iam.deployment import Archive, Principal
from tests.iam.policy import Decision, Request, Statement, action_matches, arn_matches, decide
from tests.iam.template import TemplateError

# Grants no call needs and Lambda does not use, each kept for the reason given (function, action).
GRANTED_WITHOUT_A_CALL: dict[tuple[str, str], str] = {
    ("fetcher", "dynamodb:GetItem"): (
        "Read on two fallback paths the replay cannot drive without a real race: a claim whose failed "
        "condition returns no item (dal/ledger/invoices.py take; DynamoDB returns it since "
        "ReturnValuesOnConditionCheckFailure) and a lease taken over before mark_archived "
        "(dal/ledger/invoices.py)."
    ),
    ("*", "sqs:ChangeMessageVisibility"): (
        "CDK's SqsEventSource grants its queue's consume actions (Queue.grantConsumeMessages) to the "
        "function; Lambda's event source mapping documents only ReceiveMessage, DeleteMessage and "
        "GetQueueAttributes. On the function's own queue only; CDK has no option to leave it out."
    ),
    ("*", "sqs:GetQueueUrl"): (
        "Added with sqs:ChangeMessageVisibility by CDK's SqsEventSource (Queue.grantConsumeMessages), on the "
        "function's own queue only; harmless (reveals the URL of a queue the role may already read)."
    ),
}


# Replay ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A request that the deployed policies would refuse."""

    function: str
    call: str
    origin: str
    action: str
    resource: str
    principal: str
    explanation: str
    step: str = ""

    def __str__(self) -> str:
        step = f" [{self.step}]" if self.step else ""
        return (
            f"{self.function}: {self.call} from {self.origin}{step} needs {self.action} on {self.resource} "
            f"as {self.principal}: {self.explanation}"
        )


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)  # grants no call needs, without a listed reason
    reasoned: list[str] = field(default_factory=list)  # grants no call needs, kept for a listed reason
    used_by_lambda: list[str] = field(default_factory=list)  # grants only Lambda itself uses, and why
    evaluated: int = 0  # (need, decision) pairs

    def failures(self) -> str:
        """One line per distinct refusal (with how many calls share it), for an assertion message."""
        counted: dict[str, int] = defaultdict(int)
        first: dict[str, Finding] = {}
        for finding in self.findings:
            call = finding.call.split(" on ")[0]
            key = f"{finding.function}|{call}|{finding.origin}|{finding.action}|{finding.explanation}"
            counted[key] += 1
            first.setdefault(key, finding)
        lines = [
            f"- {first[key]}" + (f" (and {n - 1} more like it)" if n > 1 else "")
            for key, n in counted.items()
        ]
        return f"{len(self.findings)} call(s) the synthesized policies would refuse:\n" + "\n".join(lines)


def describe_call(record: Mapping[str, Any]) -> str:
    params = record.get("params", {})
    where = params.get("QueueUrl") or params.get("TableName") or params.get("RoleArn") or ""
    if "Bucket" in params:
        where = f"s3://{params['Bucket']}/{params.get('Key', '')}"
    flags = [
        name
        for name in ("Tagging", "IfNoneMatch", "IfMatch", "VersionId", "IndexName", "ExternalId")
        if params.get(name)
    ]
    text = f"{record['service']} {record['operation']}"
    if flags:
        text += f" (with {', '.join(flags)})"
    return f"{text} on {where}" if where else text


def replay(
    records: Iterable[Mapping[str, Any]],
    archive: Archive,
    *,
    functions: Iterable[str] = ("lister", "fetcher"),
) -> Report:
    report = Report()
    used: set[tuple[str, int, str, str]] = (
        set()
    )  # (policy, statement index, action pattern, resource pattern)
    grants: dict[str, tuple[Principal, list[Statement]]] = {}
    for function in functions:
        principal = archive.function_principal(function)
        grants[principal.arn] = (principal, archive.identity(principal))
    for record in records:
        try:
            principal = archive.principal_for(record)
            wanted = needs(record, archive)
        except (UnmappedCall, TemplateError) as exc:
            report.findings.append(
                Finding(
                    record["function"],
                    describe_call(record),
                    str(record.get("origin")),
                    "?",
                    "?",
                    "?",
                    str(exc),
                    str(record.get("step", "")),
                )
            )
            continue
        grants.setdefault(principal.arn, (principal, archive.identity(principal)))
        for need in wanted:
            decision = _evaluate(archive, principal, need)
            report.evaluated += 1
            if not decision.allowed:
                report.findings.append(
                    Finding(
                        record["function"],
                        describe_call(record),
                        str(record.get("origin")),
                        need.action,
                        need.target.arn,
                        principal.label,
                        f"{decision.explanation} (needed because: {need.because})",
                        str(record.get("step", "")),
                    )
                )
            _mark(used, decision, need)
    lambda_used: set[tuple[str, int, str, str]] = set()
    reasons: dict[tuple[str, int, str, str], str] = {}
    for function in functions:
        principal = archive.function_principal(function)
        for need, reason in archive.lambda_needs(function):
            decision = _evaluate(archive, principal, need)
            report.evaluated += 1
            if not decision.allowed:
                report.findings.append(
                    Finding(
                        function,
                        "(Lambda on the function's behalf)",
                        reason,
                        need.action,
                        need.target.arn,
                        principal.label,
                        decision.explanation,
                    )
                )
            marks: set[tuple[str, int, str, str]] = set()
            _mark(marks, decision, need)
            lambda_used |= marks
            reasons.update(dict.fromkeys(marks, reason))
    _converse(report, grants, used, lambda_used, reasons)
    return report


def _evaluate(archive: Archive, principal: Principal, need: Need) -> Decision:
    mode = need.mode
    if mode == "same-account" and need.target.account and need.target.account != principal.account:
        mode = "cross-account"
    context = {
        "aws:SecureTransport": True,
        "aws:PrincipalArn": principal.arn,
        "aws:PrincipalAccount": principal.account,
        "aws:PrincipalType": "AssumedRole",
        "aws:RequestedRegion": "us-east-1"
        if need.action.startswith(("invoicing:", "aws-portal:"))
        else archive.region,
        **need.context,
    }
    request = Request(need.action, need.target.arn, principal.arn, principal.account, context)
    identity = archive.identity(principal)
    decision = decide(request, identity, archive.resource_policy(need), mode=mode)
    if not decision.allowed and decision.denying is None:  # say where the missing Allow belongs
        policies = ", ".join(sorted({s.source for s in identity})) or "none"
        where = f"{principal.label}'s policies: {policies}"
        return replace(decision, explanation=f"{decision.explanation} ({where})")
    return decision


def _mark(used: set[tuple[str, int, str, str]], decision: Decision, need: Need) -> None:
    for statement in decision.allowing:
        if statement.principal is not None:
            continue  # a resource policy's statement: the converse is about the roles' own grants
        for action in statement.actions:
            for resource in statement.resources:
                single = _single(statement, action, resource)
                if action_matches(single, need.action) and (
                    resource == need.target.arn or arn_matches(resource, need.target.arn)
                ):
                    used.add((statement.source, statement.index, action, resource))


def _single(statement: Statement, action: str, resource: str) -> Statement:
    return Statement(
        statement.source,
        statement.index,
        statement.sid,
        statement.effect,
        (action,),
        False,
        (resource,),
        False,
        None,
        False,
        {},
    )


def _converse(
    report: Report,
    grants: Mapping[str, tuple[Principal, list[Statement]]],
    used: set[tuple[str, int, str, str]],
    lambda_used: set[tuple[str, int, str, str]],
    reasons: Mapping[tuple[str, int, str, str], str],
) -> None:
    for principal, statements in grants.values():
        function = principal.label
        for statement in statements:
            if statement.effect != "Allow" or statement.not_action or statement.not_resource:
                continue
            for action in statement.actions:
                for resource in statement.resources:
                    key = (statement.source, statement.index, action, resource)
                    grant = f"{function}: {statement.label} grants {action} on {resource}"
                    if key in used:
                        continue
                    if key in lambda_used:
                        report.used_by_lambda.append(f"{grant}: {reasons[key]}")
                        continue
                    reason = _listed_reason(function, action)
                    if reason:
                        report.reasoned.append(f"{grant}: {reason}")
                    else:
                        report.unused.append(f"{grant}, which no recorded call needs and Lambda does not use")


def _listed_reason(function: str, action: str) -> str:
    for (who, listed), reason in GRANTED_WITHOUT_A_CALL.items():
        if listed == action and (who == "*" or f"the {who}'s role" == function):
            return reason
    return ""
