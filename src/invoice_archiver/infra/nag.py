"""cdk-nag acknowledgments (cdk-nag v3: CDK's native `Validations.of(...).acknowledge`).

cdk-nag v3 dropped `NagSuppressions`/`applies_to`: a finding is acknowledged by its id, which for rules
that report several findings per resource carries the finding in brackets, e.g.
`AwsSolutions-IAM5[Resource::*]` (the v2 `applies_to` string). There is no prefix matching, so each
finding is acknowledged on its own, with its reason.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str, *, findings: tuple[str, ...] = ()) -> None:
    """Acknowledge `rule` (or only its `findings`) on `construct`, with a reviewer-facing reason."""
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    Validations.of(construct).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))


def arn_finding(construct: IConstruct, suffix: str = "") -> str:
    """The IAM5 finding for `<LogicalId.Arn><suffix>`, the way cdk-nag prints a resource's Fn::GetAtt Arn."""
    child = construct.node.default_child
    assert isinstance(child, CfnElement)
    stack = Stack.of(construct)
    return f"Resource::<{stack.resolve(stack.get_logical_id(child))}.Arn>{suffix}"
