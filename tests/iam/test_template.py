"""Deployed: a template's intrinsics resolved against one deployment, and its policies collected."""

from __future__ import annotations

from typing import Any

import pytest

from tests.iam.template import Deployed, TemplateError

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Account": {"Type": "String"},
        "Name": {"Type": "String", "Default": "reader"},
        "Discover": {"Type": "String", "Default": "false"},
    },
    "Conditions": {"DiscoveryOn": {"Fn::Equals": [{"Ref": "Discover"}, "true"]}},
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "work"}},
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": {"Ref": "Name"},
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${Account}:root"}},
                            "Condition": {
                                "ArnEquals": {
                                    "aws:PrincipalArn": {
                                        "Fn::Sub": [
                                            "arn:aws:iam::${Acct}:role/${N}-x",
                                            {"Acct": {"Ref": "Account"}, "N": "s"},
                                        ]
                                    }
                                }
                            },
                        }
                    ]
                },
                "Policies": [
                    {
                        "PolicyName": "Inline",
                        "PolicyDocument": {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "s3:GetObject",
                                    "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/*"]]},
                                }
                            ]
                        },
                    }
                ],
            },
        },
        "Extra": {
            "Type": "AWS::IAM::RolePolicy",
            "Condition": "DiscoveryOn",
            "Properties": {
                "RoleName": {"Ref": "Role"},
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Sid": "Units",
                            "Effect": "Allow",
                            "Action": "invoicing:ListInvoiceUnits",
                            "Resource": "*",
                        }
                    ]
                },
            },
        },
        "QueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": "Queue"}],
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "sqs:*",
                            "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
                        }
                    ]
                },
            },
        },
    },
}


def deployed(**parameters: str) -> Deployed:
    return Deployed(
        TEMPLATE,
        account="111111111111",
        region="eu-west-1",
        stack_name="S",
        parameters={"Account": "999999999999", **parameters},
    )


def test_refs_and_attributes_resolve_to_the_deployments_names() -> None:
    stack = deployed()
    assert stack.resolve({"Ref": "Queue"}) == "https://sqs.eu-west-1.amazonaws.com/111111111111/work"
    assert stack.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:aws:sqs:eu-west-1:111111111111:work"
    assert stack.resolve({"Fn::GetAtt": "Queue.QueueName"}) == "work"
    assert stack.resolve({"Ref": "Bucket"}) == "s-bucket"
    assert stack.resolve({"Fn::GetAtt": ["Role", "Arn"]}) == "arn:aws:iam::111111111111:role/reader"
    assert stack.resolve({"Ref": "AWS::NoValue"}) is None
    assert stack.resolve([1, {"Ref": "AWS::NoValue"}, 2]) == [1, 2]
    assert stack.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    assert stack.resolve({"Fn::If": ["DiscoveryOn", "yes", "no"]}) == "no"
    assert stack.resolve({"Fn::Sub": "${!Literal}-${AWS::Region}"}) == "${Literal}-eu-west-1"
    # a Ref given by the caller wins (the sandbox's queue URL)
    assert stack.resolve({"Ref": "Queue"}, refs={"Queue": "http://127.0.0.1/q"}) == "http://127.0.0.1/q"


def test_parameters_take_the_given_value_or_the_default() -> None:
    assert deployed(Name="other").resolve({"Fn::GetAtt": ["Role", "Arn"]}).endswith(":role/other")
    with pytest.raises(TemplateError, match="parameter Account has no default"):
        Deployed(TEMPLATE, account="1", region="r").resolve({"Ref": "Account"})
    with pytest.raises(TemplateError, match="has no parameter Nope"):
        Deployed(TEMPLATE, account="1", region="r", parameters={"Nope": "x"})


def test_an_unknown_intrinsic_or_attribute_fails_loudly() -> None:
    with pytest.raises(TemplateError, match="cannot resolve Fn::ImportValue"):
        deployed().resolve({"Fn::ImportValue": "x"})
    with pytest.raises(TemplateError, match=r"cannot resolve Fn::GetAtt Queue\.Oops"):
        deployed().resolve({"Fn::GetAtt": ["Queue", "Oops"]})


def test_a_roles_policies_include_conditional_ones_only_when_their_condition_holds() -> None:
    assert [s.actions for s in deployed().role_policies("Role")] == [("s3:GetObject",)]
    with_units = deployed(Discover="true").role_policies("Role")
    assert [s.label for s in with_units] == [
        "Role inline policy 'Inline' statement #1",
        "Extra statement 'Units'",
    ]
    assert with_units[0].resources == ("arn:aws:s3:::s-bucket/*",)


def test_trust_and_resource_policies_are_resolved() -> None:
    [trust] = deployed().trust_policy("Role")
    assert trust.principal == {"AWS": "arn:aws:iam::999999999999:root"}
    assert trust.conditions == {"ArnEquals": {"aws:PrincipalArn": ("arn:aws:iam::999999999999:role/s-x",)}}
    [deny] = deployed().resource_policy("Queue")
    assert (deny.effect, deny.resources) == ("Deny", ("arn:aws:sqs:eu-west-1:111111111111:work",))
    assert deployed().resource_policy("Bucket") == []


def test_managed_policies_cannot_be_evaluated_and_say_so() -> None:
    template = {
        "Resources": {
            "R": {
                "Type": "AWS::IAM::Role",
                "Properties": {"ManagedPolicyArns": ["arn:aws:iam::aws:policy/X"]},
            }
        }
    }
    with pytest.raises(TemplateError, match="managed policies"):
        Deployed(template, account="1", region="r").role_policies("R")
