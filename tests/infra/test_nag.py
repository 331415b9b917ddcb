"""cdk-nag (AwsSolutions): no unacknowledged finding, and every acknowledgment is deliberate."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks
from infra_synth import Synth

# Every acknowledgment in the stack, by construct path suffix. A new one must be added here on purpose.
EXPECTED_ACKNOWLEDGMENTS = {
    ("Pipeline/ListerRole", "AwsSolutions-IAM5[Resource::*]"),
    ("Pipeline/FetcherRole", "AwsSolutions-IAM5[Resource::*]"),
    ("Pipeline/ListerPermissions", "AwsSolutions-IAM5[Resource::*]"),
    ("Pipeline/FetcherPermissions", "AwsSolutions-IAM5[Resource::*]"),
    ("Pipeline/ListerPermissions", "AwsSolutions-IAM5[Resource::<PipelineListerLogGroup8BFB47AD.Arn>:*]"),
    ("Pipeline/FetcherPermissions", "AwsSolutions-IAM5[Resource::<PipelineFetcherLogGroup80B85DE1.Arn>:*]"),
    (
        "Pipeline/FetcherPermissions",
        "AwsSolutions-IAM5[Resource::<StorageArchiveBucketC50834F0.Arn>/invoices/*]",
    ),
    ("Schedule/DeadLetterQueue", "AwsSolutions-SQS3"),
}


def acknowledgments(stack: cdk.Stack) -> list[tuple[str, str, str]]:
    found = []
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            data: dict[str, str] = entry.data  # {"Annotation::<rule id>": reason}
            for rule_id, reason in data.items():
                found.append((construct.node.path, rule_id.split("::", 1)[-1], reason))
    return found


@pytest.mark.parametrize("variant", ["default", "hardened"])
def test_aws_solutions_checks_report_no_violation(variant: str, request: pytest.FixtureRequest) -> None:
    # Given the stack (as configured by cdk.json, and with every option on)
    synth: Synth = request.getfixturevalue(variant)
    # When cdk-nag's AwsSolutions pack validates it
    report = AwsSolutionsChecks(verbose=True).validate_scope(synth.stack)
    # Then nothing is left unacknowledged
    assert [v.rule_name for v in report.violations] == []
    assert report.success
    # And no AwsSolutions error or warning annotation exists either
    for find in (
        Annotations.from_stack(synth.stack).find_error,
        Annotations.from_stack(synth.stack).find_warning,
    ):
        assert find("*", Match.string_like_regexp("AwsSolutions-.*")) == []


def test_every_acknowledgment_is_expected_and_explained(default: Synth) -> None:
    # Given the acknowledgments recorded on the construct tree
    found = acknowledgments(default.stack)
    # Then they are exactly the expected ones, each with a reason a reviewer can check
    assert {(path.removeprefix(f"{default.stack.node.path}/"), rule_id) for path, rule_id, _ in found} == (
        EXPECTED_ACKNOWLEDGMENTS
    )
    for _, rule_id, reason in found:
        assert len(reason) > 60, rule_id


def test_the_app_registers_cdk_nag_and_synth_fails_on_a_violation() -> None:
    # Given an app built like app.py, with a construct that breaks an AwsSolutions rule
    from infra_synth import cdk_json_context

    from app import build_app

    app = cdk.App(context=cdk_json_context())
    stack = build_app(app)
    cdk.aws_sqs.Queue(stack, "PlainQueue")
    # When it is synthesized, Then cdk-nag stops the synth
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
