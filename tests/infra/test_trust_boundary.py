"""AWS itself enforces the archive's boundary (issue 15, item 3): the synthesized policies, asserted, then
tried as an attacker in the archive account would, with a tiny evaluator of those very policies.

* the bucket denies every creating write to the archive prefix without If-None-Match, to anyone;
* nothing replicates into the archive prefix, and the functions' roles never delete, hide or unlock
  an archived object (operators keep those powers);
* no lifecycle rule expires a noncurrent version of an archive object;
* only the lister's role may send to the invoice queue and the listing queue, and no other queue may
  move its messages into them as their dead-letter queue;
* a payer's role trusts the archive's lister and fetcher roles only, with the ExternalId.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_synth import Synth
from policy_check import Request, effects, may_redrive_into

from invoice_archiver.infra.payer_role import PAYER_ROLE_STACK_NAME, PAYER_ROLE_STAGE, Param
from invoice_archiver.infra.storage import REPLICATION_ACTIONS, REWRITE_ACTIONS

ACCOUNT = "123456789012"
BUCKET_ARN = "arn:aws:s3:::archive-bucket"
LISTER = f"arn:aws:iam::{ACCOUNT}:role/InvoiceArchiver-us-east-1-lister"
FETCHER = f"arn:aws:iam::{ACCOUNT}:role/InvoiceArchiver-us-east-1-fetcher"
SOMEONE = f"arn:aws:iam::{ACCOUNT}:role/platform-admin"
CREATE_DENY = {
    "Sid": "DenyOverwritingTheArchive",
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": "s3:PutObject",
    "Condition": {"Null": {"s3:if-none-match": "true"}, "Bool": {"s3:ObjectCreationOperation": "true"}},
}
ARCHIVE_KEY = "invoices/account=1/period=2026-10/INV/invoice.pdf"


def role_arn(name: str) -> dict[str, Any]:
    """A function role's ARN as the template builds it from the fixed name (no reference to the role)."""
    return {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, f":role/{name}"],
        ]
    }


def bucket_statements(synth: Synth) -> tuple[str, list[dict[str, Any]]]:
    bucket = synth.logical_id("StorageArchiveBucket", "AWS::S3::Bucket")
    policies = [
        p["Properties"]
        for p in synth.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    [policy] = policies
    return bucket, policy["PolicyDocument"]["Statement"]


def queue_statements(synth: Synth, prefix: str) -> tuple[str, list[dict[str, Any]]]:
    queue = synth.logical_id(prefix, "AWS::SQS::Queue")
    [policy] = [
        p["Properties"]
        for p in synth.resources("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue}]
    ]
    return queue, policy["PolicyDocument"]["Statement"]


def names(synth: Synth) -> dict[str, str]:
    """What the stack's references stand for in one deployed account."""
    lister = synth.logical_id("PipelineListerRole", "AWS::IAM::Role")
    fetcher = synth.logical_id("PipelineFetcherRole", "AWS::IAM::Role")
    return {
        "AWS::Partition": "aws",
        "AWS::AccountId": ACCOUNT,
        synth.logical_id("StorageArchiveBucket", "AWS::S3::Bucket") + ".Arn": BUCKET_ARN,
        lister + ".Arn": LISTER,
        fetcher + ".Arn": FETCHER,
        synth.logical_id("PipelineInvoiceQueue", "AWS::SQS::Queue") + ".Arn": "arn:aws:sqs:::invoices",
        synth.logical_id("PipelineListingQueue", "AWS::SQS::Queue") + ".Arn": "arn:aws:sqs:::listings",
    }


# --- what the template says -----------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["default", "hardened"])
def test_the_bucket_denies_every_creating_write_without_if_none_match(
    variant: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    bucket, statements = bucket_statements(synth)
    [deny] = [s for s in statements if s.get("Sid") == "DenyOverwritingTheArchive"]
    assert {k: v for k, v in deny.items() if k != "Resource"} == CREATE_DENY
    assert deny["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/invoices/*"]]}


@pytest.mark.parametrize("variant", ["default", "hardened"])
def test_the_bucket_denies_replication_into_the_archive_to_anyone(
    variant: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    bucket, statements = bucket_statements(synth)
    [deny] = [s for s in statements if s.get("Sid") == "DenyReplicationIntoTheArchive"]
    assert deny == {
        "Sid": "DenyReplicationIntoTheArchive",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"],
        "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/invoices/*"]]},
    }


@pytest.mark.parametrize(("variant", "region"), [("default", "us-east-1"), ("hardened", "eu-west-1")])
def test_the_functions_roles_may_never_remove_or_rewrite_an_archived_object(
    variant: str, region: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    bucket, statements = bucket_statements(synth)
    [deny] = [s for s in statements if s.get("Sid") == "FunctionsNeverRemoveOrRewrite"]
    assert deny == {
        "Sid": "FunctionsNeverRemoveOrRewrite",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": sorted(REWRITE_ACTIONS),
        "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/invoices/*"]]},
        "Condition": {
            "ArnEquals": {
                "aws:PrincipalArn": [
                    role_arn(f"InvoiceArchiver-{region}-lister"),
                    role_arn(f"InvoiceArchiver-{region}-fetcher"),
                ]
            }
        },
    }
    # Every way S3 offers to delete, hide, unlock or re-ACL an object or a version is in the list
    assert {
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:PutObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:BypassGovernanceRetention",
    } <= set(REWRITE_ACTIONS)


@pytest.mark.parametrize("variant", ["default", "hardened"])
def test_no_lifecycle_rule_expires_a_noncurrent_archive_version(
    variant: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    bucket = synth.logical_id("StorageArchiveBucket", "AWS::S3::Bucket")
    rules = synth.resources("AWS::S3::Bucket")[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules, "the archive keeps its tiering rule"
    for rule in rules:
        assert "NoncurrentVersionExpiration" not in rule
        assert "NoncurrentVersionExpirationInDays" not in rule
        assert "ExpirationInDays" not in rule
    # Colder storage classes stay
    assert any(rule.get("Transitions") for rule in rules)


@pytest.mark.parametrize("prefix", ["PipelineInvoiceQueue", "PipelineListingQueue"])
def test_only_the_listers_role_may_send_to_a_work_queue(default: Synth, prefix: str) -> None:
    queue, statements = queue_statements(default, prefix)
    lister = default.logical_id("PipelineListerRole", "AWS::IAM::Role")
    [deny] = [s for s in statements if s.get("Sid") == "OnlyTheListerSends"]
    assert deny == {
        "Sid": "OnlyTheListerSends",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": [queue, "Arn"]},
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": [lister, "Arn"]}}},
    }


@pytest.mark.parametrize("variant", ["default", "hardened"])
@pytest.mark.parametrize("prefix", ["PipelineInvoiceQueue", "PipelineListingQueue"])
def test_no_other_queue_may_name_a_work_queue_as_its_dead_letter_queue(
    variant: str, prefix: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    queue = synth.resources("AWS::SQS::Queue")[synth.logical_id(prefix, "AWS::SQS::Queue")]
    assert queue["Properties"]["RedriveAllowPolicy"] == {"redrivePermission": "denyAll"}


def test_the_functions_roles_have_their_fixed_names(default: Synth) -> None:
    for function in ("Lister", "Fetcher"):
        role = default.logical_id(f"Pipeline{function}Role", "AWS::IAM::Role")
        name = default.resources("AWS::IAM::Role")[role]["Properties"]["RoleName"]
        assert name == f"InvoiceArchiver-us-east-1-{function.lower()}"


# --- tried as an attacker in the archive account would ---------------------------------------------


def s3_put(principal: str, key: str, *, if_none_match: str | None, creating: bool = True) -> Request:
    return Request(
        "s3:PutObject",
        f"{BUCKET_ARN}/{key}",
        principal,
        {"s3:if-none-match": if_none_match, "s3:ObjectCreationOperation": "true" if creating else "false"},
    )


@pytest.mark.parametrize("principal", [FETCHER, LISTER, SOMEONE])
def test_an_overwrite_of_an_archived_object_is_denied_to_anyone(default: Synth, principal: str) -> None:
    _, statements = bucket_statements(default)
    overwrite = s3_put(principal, "invoices/account=1/period=2026-10/INV/invoice.pdf", if_none_match=None)
    assert "Deny" in effects(statements, overwrite, names(default))
    # ... and the revisions folder and summary.json are under the same rule
    for key in ("summary.json", "revisions/20261103T060000.000000Z-summary.json"):
        request = s3_put(principal, f"invoices/account=1/period=2026-10/INV/{key}", if_none_match=None)
        assert "Deny" in effects(statements, request, names(default))


def test_create_only_writes_and_multipart_parts_are_not_denied(default: Synth) -> None:
    _, statements = bucket_statements(default)
    key = "invoices/account=1/period=2026-10/INV/invoice.pdf"
    # PutObject / CompleteMultipartUpload with If-None-Match: *
    assert "Deny" not in effects(statements, s3_put(FETCHER, key, if_none_match="*"), names(default))
    # CreateMultipartUpload / UploadPart: no conditional header, and no object created
    part = s3_put(FETCHER, key, if_none_match=None, creating=False)
    assert "Deny" not in effects(statements, part, names(default))
    # Outside the archive prefix (the access logs live in their own bucket anyway), nothing is denied
    outside = s3_put(SOMEONE, "elsewhere/x.pdf", if_none_match=None)
    assert "Deny" not in effects(statements, outside, names(default))


def s3_request(action: str, principal: str, key: str = ARCHIVE_KEY) -> Request:
    return Request(action, f"{BUCKET_ARN}/{key}", principal, {"aws:PrincipalArn": principal})


@pytest.mark.parametrize("action", ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention"])
@pytest.mark.parametrize("principal", [FETCHER, LISTER])
def test_a_function_role_may_not_delete_hide_or_unlock_an_archived_object(
    default: Synth, principal: str, action: str
) -> None:
    _, statements = bucket_statements(default)
    assert "Deny" in effects(statements, s3_request(action, principal), names(default))


def test_operators_keep_what_verify_advises_and_the_fetcher_keeps_tagging(default: Synth) -> None:
    _, statements = bucket_statements(default)
    # An operator removes a delete marker (DeleteObjectVersion), as `verify` advises for a hidden invoice
    assert "Deny" not in effects(statements, s3_request("s3:DeleteObjectVersion", SOMEONE), names(default))
    # The fetcher tags what it creates: S3 authorizes those tags as s3:PutObjectTagging (what remains:
    # the same action re-tags an existing object; docs/decisions.md)
    assert "Deny" not in effects(statements, s3_request("s3:PutObjectTagging", FETCHER), names(default))
    # The rest of the role's account is not named by the function-role deny
    assert "Deny" not in effects(statements, s3_request("s3:DeleteObject", SOMEONE), names(default))


@pytest.mark.parametrize("action", REPLICATION_ACTIONS)
@pytest.mark.parametrize("principal", [SOMEONE, FETCHER, f"arn:aws:iam::{ACCOUNT}:role/replication"])
def test_nothing_replicates_into_the_archive(default: Synth, principal: str, action: str) -> None:
    _, statements = bucket_statements(default)
    assert "Deny" in effects(statements, s3_request(action, principal), names(default))


@pytest.mark.parametrize("prefix", ["PipelineInvoiceQueue", "PipelineListingQueue"])
def test_a_queue_of_the_account_cannot_funnel_its_messages_into_a_work_queue(
    default: Synth, prefix: str
) -> None:
    # Given a queue someone in the archive account creates, naming a work queue as its dead-letter
    # queue (each message it receives and never deletes would be moved there by SQS, no SendMessage)
    queues = default.resources("AWS::SQS::Queue")
    attacker = "arn:aws:sqs:us-east-1:123456789012:forged-invoices"
    # Then SQS refuses it, while the pipeline's own queues still dead-letter into their DLQ
    assert not may_redrive_into(queues[default.logical_id(prefix, "AWS::SQS::Queue")], attacker, {})
    dlq = queues[default.logical_id("PipelineDeadLetterQueue", "AWS::SQS::Queue")]
    assert may_redrive_into(dlq, "arn:aws:sqs:us-east-1:123456789012:invoices", {})


@pytest.mark.parametrize("prefix", ["PipelineInvoiceQueue", "PipelineListingQueue"])
@pytest.mark.parametrize(("principal", "denied"), [(SOMEONE, True), (FETCHER, True), (LISTER, False)])
def test_a_message_from_anyone_but_the_lister_is_refused_by_the_queue(
    default: Synth, prefix: str, principal: str, denied: bool
) -> None:
    queue, statements = queue_statements(default, prefix)
    arn = names(default)[queue + ".Arn"]
    request = Request("sqs:SendMessage", arn, principal, {"aws:PrincipalArn": principal})
    assert ("Deny" in effects(statements, request, names(default))) is denied


def payer_trust(payer_template: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = payer_template["Resources"]["PayerRole"]["Properties"][
        "AssumeRolePolicyDocument"
    ]["Statement"]
    return statements


@pytest.mark.parametrize(
    ("principal", "external_id", "trusted"),
    [
        (FETCHER, "archive-7f3a", True),
        (LISTER, "archive-7f3a", True),
        (SOMEONE, "archive-7f3a", False),  # another principal of the archive account, with the id
        (FETCHER, "guessed", False),
        ("arn:aws:iam::999999999999:role/InvoiceArchiver-us-east-1-fetcher", "archive-7f3a", False),
    ],
)
def test_a_payer_role_trusts_only_the_archive_functions_roles(
    default: Synth, principal: str, external_id: str, trusted: bool
) -> None:
    assembly = default.stack.node.root.node.find_child(PAYER_ROLE_STAGE)
    stack = assembly.node.find_child(PAYER_ROLE_STACK_NAME)
    from aws_cdk.assertions import Template

    template = Template.from_stack(stack).to_json()
    parameters = {
        "AWS::Partition": "aws",
        Param.ARCHIVE_ACCOUNT_ID: ACCOUNT,
        Param.ARCHIVE_STACK_NAME: "InvoiceArchiver",
        Param.ARCHIVE_REGION: "us-east-1",
        Param.EXTERNAL_ID: "archive-7f3a",
    }
    request = Request(
        "sts:AssumeRole",
        "*",
        principal,
        {"aws:PrincipalArn": principal, "sts:ExternalId": external_id},
    )
    assert ("Allow" in effects(payer_trust(template), request, parameters)) is trusted
