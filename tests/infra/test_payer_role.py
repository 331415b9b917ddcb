"""The payer-role template: one role, read-only, trusted by the archive account with the ExternalId."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks
from infra_synth import cdk_json_context

from app import build_app
from invoice_archiver.infra.payer_role import PAYER_ROLE_STACK_NAME, PAYER_ROLE_STAGE, Param, PayerRoleStack
from invoice_archiver.infra.settings import DeploySettings


@pytest.fixture(scope="module")
def payer() -> PayerRoleStack:
    # Given the payer-role stack on its own (it reads no context)
    return PayerRoleStack(cdk.App(), PAYER_ROLE_STACK_NAME)


@pytest.fixture(scope="module")
def template(payer: PayerRoleStack) -> dict[str, Any]:
    rendered: dict[str, Any] = Template.from_stack(payer).to_json()
    return rendered


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_the_template_holds_one_role_and_one_conditional_policy_and_nothing_else(
    template: dict[str, Any],
) -> None:
    assert {logical_id: r["Type"] for logical_id, r in template["Resources"].items()} == {
        "PayerRole": "AWS::IAM::Role",
        "DiscoverInvoiceUnitsPolicy": "AWS::IAM::RolePolicy",
    }
    # StackSets deploy it as it is: no bootstrap parameter or rule, no CDK metadata
    assert set(template["Parameters"]) == {
        Param.ARCHIVE_ACCOUNT_ID,
        Param.ARCHIVE_STACK_NAME,
        Param.ARCHIVE_REGION,
        Param.EXTERNAL_ID,
        Param.ROLE_NAME,
        Param.DISCOVER_INVOICE_UNITS,
    }
    assert "Rules" not in template
    role = template["Resources"]["PayerRole"]["Properties"]
    assert role["RoleName"] == {"Ref": Param.ROLE_NAME}
    assert "ManagedPolicyArns" not in role
    assert "PermissionsBoundary" not in role


def test_the_role_allows_exactly_the_read_actions(template: dict[str, Any]) -> None:
    # When we collect every statement of the role's own policies
    policies = template["Resources"]["PayerRole"]["Properties"]["Policies"]
    statements = [s for policy in policies for s in policy["PolicyDocument"]["Statement"]]
    # Then it is one Allow of the two Invoicing reads (and the billing-console action they authorize)
    assert statements == [
        {
            "Sid": "ReadInvoices",
            "Effect": "Allow",
            "Action": ["invoicing:ListInvoiceSummaries", "invoicing:GetInvoicePDF", "aws-portal:ViewBilling"],
            "Resource": "*",
        }
    ]


def test_list_invoice_units_only_when_discovery_is_on(template: dict[str, Any]) -> None:
    policy = template["Resources"]["DiscoverInvoiceUnitsPolicy"]
    # The policy exists only under the DiscoveryOn condition, which is the parameter being "true"
    assert policy["Condition"] == "DiscoveryOn"
    assert template["Conditions"]["DiscoveryOn"] == {
        "Fn::Equals": [{"Ref": Param.DISCOVER_INVOICE_UNITS}, "true"]
    }
    assert template["Parameters"][Param.DISCOVER_INVOICE_UNITS]["Default"] == "false"
    assert template["Parameters"][Param.DISCOVER_INVOICE_UNITS]["AllowedValues"] == ["true", "false"]
    # And it allows ListInvoiceUnits, on the payer role, and nothing else
    assert policy["Properties"]["RoleName"] == {"Ref": "PayerRole"}
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [(s["Effect"], _actions(s), s["Resource"]) for s in statements] == [
        ("Allow", ["invoicing:ListInvoiceUnits"], "*")
    ]


ROLE_ARN = "arn:${AWS::Partition}:iam::${Account}:role/${StackName}-${Region}-"


def test_the_role_trusts_only_the_archive_functions_roles_with_the_external_id(
    template: dict[str, Any],
) -> None:
    trust = template["Resources"]["PayerRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {
                "AWS": {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":iam::",
                            {"Ref": Param.ARCHIVE_ACCOUNT_ID},
                            ":root",
                        ],
                    ]
                }
            },
            # Any other principal of the archive account is not trusted, whatever its own policies allow
            "Condition": {
                "StringEquals": {"sts:ExternalId": {"Ref": Param.EXTERNAL_ID}},
                "ArnEquals": {
                    "aws:PrincipalArn": [
                        {
                            "Fn::Sub": [
                                ROLE_ARN + function,
                                {
                                    "Account": {"Ref": Param.ARCHIVE_ACCOUNT_ID},
                                    "StackName": {"Ref": Param.ARCHIVE_STACK_NAME},
                                    "Region": {"Ref": Param.ARCHIVE_REGION},
                                },
                            ]
                        }
                        for function in ("lister", "fetcher")
                    ]
                },
            },
        }
    ]


def test_the_trusted_names_are_the_archive_stacks_role_names() -> None:
    # Given the archive stack's settings, Then its roles carry the names the payer template trusts
    settings = DeploySettings(stack_name="Archive-7", region="eu-central-1")
    assert settings.role_name("lister") == "Archive-7-eu-central-1-lister"
    assert settings.role_name("fetcher") == "Archive-7-eu-central-1-fetcher"


def test_the_parameters_are_validated_and_the_external_id_is_not_echoed(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters[Param.ARCHIVE_ACCOUNT_ID]["AllowedPattern"] == r"^\d{12}$"
    assert parameters[Param.EXTERNAL_ID]["NoEcho"] is True
    assert (parameters[Param.EXTERNAL_ID]["MinLength"], parameters[Param.EXTERNAL_ID]["MaxLength"]) == (
        2,
        1224,
    )
    assert parameters[Param.ROLE_NAME]["Default"] == "invoice-archiver-reader"
    assert template["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["PayerRole", "Arn"]}


def test_cdk_nag_reports_nothing_and_acknowledges_only_the_wildcard(payer: PayerRoleStack) -> None:
    report = AwsSolutionsChecks(verbose=True).validate_scope(payer)
    assert [v.rule_name for v in report.violations] == []
    for find in (Annotations.from_stack(payer).find_error, Annotations.from_stack(payer).find_warning):
        assert find("*", Match.string_like_regexp("AwsSolutions-.*")) == []
    acknowledged = {
        (construct.node.path, rule_id.split("::", 1)[-1])
        for construct in payer.node.find_all()
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule_id in entry.data
    }
    assert acknowledged <= {
        (f"{PAYER_ROLE_STACK_NAME}/Role", "AwsSolutions-IAM5[Resource::*]"),
        (f"{PAYER_ROLE_STACK_NAME}/DiscoverInvoiceUnitsPolicy", "AwsSolutions-IAM5[Resource::*]"),
    }


def test_the_app_synthesizes_the_payer_role_as_its_own_template_in_its_own_stage() -> None:
    # Given the app as `cdk synth` builds it
    app = cdk.App(context=cdk_json_context())
    build_app(app)
    # When it is synthesized
    assembly = app.synth()
    # Then the top level holds only the archive stack (`cdk deploy` alone never selects the payer role)
    assert [stack.stack_name for stack in assembly.stacks] == ["InvoiceArchiver"]
    # And the payer role is a template of its own, in the PayerRole stage's assembly
    nested = assembly.get_nested_assembly(f"assembly-{PAYER_ROLE_STAGE}")
    (stack,) = nested.stacks
    assert stack.stack_name == PAYER_ROLE_STACK_NAME
    # (cdk.out/assembly-PayerRole/PayerRoleInvoiceArchiverPayerRole<hash>.template.json: make synth lints it)
    assert stack.template_file.startswith(f"{PAYER_ROLE_STAGE}{PAYER_ROLE_STACK_NAME}")
    assert stack.template["Resources"]["PayerRole"]["Type"] == "AWS::IAM::Role"


def test_cdk_nag_runs_on_the_payer_role_in_the_app() -> None:
    # Given the app, with a construct in the payer-role stack that breaks an AwsSolutions rule
    app = cdk.App(context=cdk_json_context())
    build_app(app)
    stage = app.node.find_child(PAYER_ROLE_STAGE)
    stack = stage.node.find_child(PAYER_ROLE_STACK_NAME)
    assert isinstance(stack, PayerRoleStack)
    cdk.aws_sqs.Queue(stack, "PlainQueue")
    # When it is synthesized, Then cdk-nag stops the synth
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
