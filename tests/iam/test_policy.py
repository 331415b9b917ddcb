"""The evaluator's semantics, on small policies: each rule of AWS's policy evaluation logic it relies on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.iam.policy import (
    Request,
    UnsupportedCondition,
    arn_matches,
    conditions_hold,
    decide,
    statements_of,
)

ROLE = "arn:aws:iam::111111111111:role/fetcher"
BUCKET_OBJECT = "arn:aws:s3:::archive/invoices/a/b.pdf"


def request(action: str = "s3:PutObject", resource: str = BUCKET_OBJECT, **context: Any) -> Request:
    return Request(action, resource, ROLE, "111111111111", {"aws:PrincipalArn": ROLE, **context})


def policy(*statements: dict[str, Any], source: str = "P") -> list[Any]:
    return statements_of({"Statement": list(statements)}, source)


def allow(
    action: Any = "s3:PutObject", resource: Any = "arn:aws:s3:::archive/invoices/*", **extra: Any
) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_an_allow_that_matches_action_and_resource_allows() -> None:
    assert decide(request(), policy(allow()), mode="same-account").allowed


def test_nothing_allows_by_default_and_the_message_names_the_nearest_statement() -> None:
    decision = decide(
        request(resource="arn:aws:s3:::archive/other/x"), policy(allow(Sid="Write")), mode="same-account"
    )
    assert not decision.allowed
    assert decision.explanation.startswith("no statement allows it")
    assert "P statement 'Write' allows it only on arn:aws:s3:::archive/invoices/*" in decision.explanation


def test_an_explicit_deny_anywhere_wins_and_is_named() -> None:
    deny = {"Sid": "NoPuts", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    decision = decide(request(), policy(allow()), policy(deny, source="BucketPolicy"), mode="same-account")
    assert not decision.allowed
    assert decision.denying is not None
    assert decision.explanation.startswith("denied by BucketPolicy statement 'NoPuts': Deny s3:*")


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("s3:Put*", "s3:PutObject", True),
        ("S3:putobject", "s3:PutObject", True),
        ("s3:Get*", "s3:PutObject", False),
    ],
)
def test_actions_match_case_insensitively_with_wildcards(pattern: str, action: str, matches: bool) -> None:
    assert decide(request(action), policy(allow(pattern, "*")), mode="same-account").allowed is matches


def test_not_action_and_not_resource_allow_everything_else() -> None:
    statement = {"Effect": "Allow", "NotAction": "s3:DeleteObject", "NotResource": "arn:aws:s3:::other/*"}
    assert decide(request(), policy(statement), mode="same-account").allowed
    assert not decide(request("s3:DeleteObject"), policy(statement), mode="same-account").allowed
    assert not decide(
        request(resource="arn:aws:s3:::other/x"), policy(statement), mode="same-account"
    ).allowed


@pytest.mark.parametrize(
    ("pattern", "arn", "matches"),
    [
        ("arn:aws:s3:::archive/*", "arn:aws:s3:::archive/a/b", True),
        ("arn:aws:sqs:*:111111111111:queue", "arn:aws:sqs:eu-west-1:111111111111:queue", True),
        ("arn:aws:sqs:*:111111111111:queue", "arn:aws:sqs:eu-west-1:222222222222:queue", False),
        ("arn:aws:logs:r:a:log-group:g:*", "arn:aws:logs:r:a:log-group:g:log-stream:x", True),
        ("arn:aws:iam::111111111111:role/a?c", "arn:aws:iam::111111111111:role/abc", True),
        ("arn:aws:iam::111111111111:role/a", "arn:aws:iam::111111111111:role/ab", False),
        ("*", "anything", True),
    ],
)
def test_arns_match_part_by_part_with_wildcards(pattern: str, arn: str, matches: bool) -> None:
    assert arn_matches(pattern, arn) is matches


CONDITIONS = [
    ({"StringEquals": {"sts:ExternalId": "x"}}, {"sts:ExternalId": "x"}, True),
    ({"StringEquals": {"sts:ExternalId": "x"}}, {"sts:ExternalId": "y"}, False),
    ({"StringEquals": {"sts:ExternalId": "x"}}, {}, False),
    ({"StringEquals": {"sts:ExternalId": ["a", "x"]}}, {"sts:ExternalId": "x"}, True),
    ({"StringNotEquals": {"aws:PrincipalAccount": "1"}}, {}, True),
    ({"StringEqualsIfExists": {"sts:ExternalId": "x"}}, {}, True),
    ({"StringLike": {"s3:prefix": "invoices/*"}}, {"s3:prefix": "invoices/2026"}, True),
    ({"StringNotLike": {"s3:prefix": "invoices/*"}}, {"s3:prefix": "invoices/2026"}, False),
    ({"ArnEquals": {"aws:PrincipalArn": ROLE}}, {}, True),
    ({"ArnEquals": {"aws:SourceArn": ROLE}}, {}, False),  # a missing key: a positive op fails
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/*"}}, {}, True),
    ({"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/lister"}}, {}, True),
    ({"ArnNotLike": {"aws:SourceArn": "arn:aws:events:*"}}, {}, True),  # a missing key: a negated op holds
    ({"ArnEqualsIfExists": {"aws:SourceArn": "arn:aws:events:*"}}, {}, True),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": True}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}, True),
    ({"Null": {"s3:if-none-match": "true"}}, {}, True),
    ({"Null": {"s3:if-none-match": "true"}}, {"s3:if-none-match": "*"}, False),
    ({"Null": {"s3:if-none-match": "false"}}, {"s3:if-none-match": "*"}, True),
    ({"NumericLessThan": {"s3:TlsVersion": 1.2}}, {"s3:TlsVersion": "1.3"}, False),
    (
        {"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": "account"}},
        {"s3:RequestObjectTagKeys": ["x", "account"]},
        True,
    ),
    (
        {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": "account"}},
        {"s3:RequestObjectTagKeys": ["x", "account"]},
        False,
    ),
    ({"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": "account"}}, {}, True),
    # keys are case-insensitive; AND across operators and keys
    (
        {"StringEquals": {"STS:EXTERNALID": "x"}, "Bool": {"aws:SecureTransport": "true"}},
        {"sts:ExternalId": "x", "aws:SecureTransport": False},
        False,
    ),
]


@pytest.mark.parametrize(("condition", "context", "holds"), CONDITIONS)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], holds: bool) -> None:
    [statement] = policy(allow(Condition=condition))
    assert conditions_hold(statement, {"aws:PrincipalArn": ROLE, **context}) is holds


@pytest.mark.parametrize("operator", ["DateGreaterThan", "IpAddress", "BinaryEquals", "Foo:StringEquals"])
def test_an_operator_it_does_not_implement_fails_loudly_naming_it(operator: str) -> None:
    [statement] = policy(allow(Condition={operator: {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}, Sid="S"))
    with pytest.raises(UnsupportedCondition, match="statement 'S'"):
        conditions_hold(statement, {"aws:CurrentTime": "2026-06-01T00:00:00Z"})


def test_a_resource_policy_applies_only_to_the_principals_it_names() -> None:
    other = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:role/lister"},
        "Action": "sqs:*",
        "Resource": "*",
    }
    everyone = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sqs:*", "Resource": "*"}
    service = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:*",
        "Resource": "*",
    }
    send = request("sqs:SendMessage", "arn:aws:sqs:us-east-1:111111111111:q")
    assert not decide(send, [], policy(other, service), mode="same-account").allowed
    assert decide(send, [], policy(everyone), mode="same-account").allowed


def test_a_key_policy_must_allow_the_role_or_leave_the_decision_to_iam() -> None:
    use = request("kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:key/k")
    root = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    service = {
        "Effect": "Allow",
        "Principal": {"Service": "logs.amazonaws.com"},
        "Action": "kms:*",
        "Resource": "*",
    }
    identity = policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})
    # the root statement lets IAM decide: then the identity policy must allow too
    assert decide(use, identity, policy(root), mode="kms").allowed
    assert "no identity statement allows it" in decide(use, [], policy(root), mode="kms").explanation
    # without it, an identity policy alone is not enough
    assert (
        "neither allows the role nor lets IAM"
        in decide(use, identity, policy(service), mode="kms").explanation
    )


def test_assuming_a_role_needs_its_trust_and_the_callers_identity_policy() -> None:
    assume = request("sts:AssumeRole", "arn:aws:iam::222222222222:role/reader", **{"sts:ExternalId": "e"})
    trust = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "e"}, "ArnEquals": {"aws:PrincipalArn": [ROLE]}},
    }
    identity = policy(allow("sts:AssumeRole", "arn:aws:iam::222222222222:role/reader"))
    assert decide(assume, identity, policy(trust), mode="trust").allowed
    assert "no identity statement allows it" in decide(assume, [], policy(trust), mode="trust").explanation
    wrong = request("sts:AssumeRole", "arn:aws:iam::222222222222:role/reader", **{"sts:ExternalId": "other"})
    assert (
        "the trust policy does not allow this principal"
        in decide(wrong, identity, policy(trust), mode="trust").explanation
    )
