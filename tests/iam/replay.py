"""Replay recorded calls against a synthesized template: is every call allowed, is every grant used?"""

from __future__ import annotations

from collections.abc import Iterable

from tests.iam.actions import Names, Need, needs
from tests.iam.evaluate import Verdict, decide
from tests.iam.recorder import Call
from tests.iam.template import Deployed

# Granted to a function's role, with no recorded call that needs it, and why that is right.
NOT_CALLED_BY_OUR_CODE = {
    "logs:CreateLogStream": "the Lambda runtime writes the function's own log group",
    "logs:PutLogEvents": "the Lambda runtime writes the function's own log group",
    "xray:PutTraceSegments": "active tracing: the Lambda runtime sends the segments",
    "xray:PutTelemetryRecords": "active tracing: the Lambda runtime sends the segments",
    "sqs:ReceiveMessage": "the SQS event source mapping polls the queue the function consumes",
    "sqs:DeleteMessage": "the SQS event source mapping deletes what the function processed",
    "sqs:ChangeMessageVisibility": "the SQS event source mapping returns failed records to the queue",
    "sqs:GetQueueAttributes": "the SQS event source mapping reads the queue it polls",
    "sqs:GetQueueUrl": "the SQS event source mapping resolves the queue it polls",
    "kms:Decrypt": "the SQS event source mapping reads messages of a queue encrypted with the CMK",
    "s3:AbortMultipartUpload": (
        "only when a multipart upload fails (dal/archive.py), to leave no parts behind: "
        "tests/integration/test_conditional_writes.py makes it happen"
    ),
    "dynamodb:GetItem": (
        "only when a conditional claim fails without returning the item (dal/ledger.conditional_claim), "
        "and when a source record is read"
    ),
    "dynamodb:DeleteItem": "only when a source that failed is read cleanly again (dal/source_status.py)",
    "dynamodb:UpdateItem": (
        "the lister's: only when a source cannot be read, to record it (dal/source_status.py); the "
        "fetcher's is recorded"
    ),
}


def decide_need(call: Call, need: Need, stack: Deployed, payer: Deployed | None, role_name: str) -> Verdict:
    role = stack.role(role_name)
    archive_principal = stack.arn(role)
    context: dict[str, str | None] = {
        "aws:SecureTransport": "true",
        "s3:TlsVersion": "1.3",
        **dict(need.context),
    }
    if call.principal != "own":  # a call made with a payer role's credentials
        if payer is None:
            return Verdict(False, "a payer role was used, but this variant configures none")
        payer_role = payer.logical_id("AWS::IAM::Role", "PayerRole")
        context["aws:PrincipalArn"] = call.principal
        return decide(need.action, need.resource, call.principal, context, payer.identity(payer_role), [])
    context["aws:PrincipalArn"] = archive_principal
    identity = stack.identity(role)
    if need.action == "sts:AssumeRole":  # across accounts: the caller's policy and the role's trust
        own = decide(need.action, need.resource, archive_principal, context, identity, [])
        if not own.allowed or payer is None:
            return own if not own.allowed else Verdict(False, "no payer role template to trust it")
        trust = payer.trust(payer.logical_id("AWS::IAM::Role", "PayerRole"))
        return decide(need.action, need.resource, archive_principal, context, [], trust)
    key = stack.key_policy(need.resource) if need.action.startswith("kms:") else None
    resource_policy = stack.resource_policy(need.resource)
    return decide(need.action, need.resource, archive_principal, context, identity, resource_policy, key)


def replay(
    calls: Iterable[Call], stack: Deployed, payer: Deployed | None, names: Names, role_names: dict[str, str]
) -> list[str]:
    """Every recorded call that the template would not allow, with the call, where and why."""
    failures = []
    for call in dict.fromkeys(calls):
        for need in needs(call, names):
            verdict = decide_need(call, need, stack, payer, role_names[call.function])
            if not verdict.allowed:
                failures.append(f"{call.describe()} needs {need.action} on {need.resource}: {verdict.why}")
    return failures


def unused_grants(
    calls: Iterable[Call], stack: Deployed, names: Names, role_name: str, function: str
) -> list[str]:
    """Actions the role is granted that no recorded call of `function` needs, and no reason explains."""
    needed = {
        n.action for c in calls if c.function == function and c.principal == "own" for n in needs(c, names)
    }
    granted = set()
    for statement in stack.identity(stack.role(role_name)):
        if statement["Effect"] == "Allow":
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            granted |= set(actions)
    return sorted(a for a in granted if a not in needed and a not in NOT_CALLED_BY_OUR_CODE)
