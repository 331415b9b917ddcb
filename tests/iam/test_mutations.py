"""The mutation check: a copy of a synthesized template with one needed statement removed, or one Deny or
condition added, makes the replay fail, naming the call, the code that made it and the statement.

These run the real recordings (tests/iam/conftest.py, variant `kms-lock-payers`: every kind of policy the
replay reads is in it) against edited copies of the templates; the unedited templates pass
(test_replay.py), so each failure here is the edit's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.iam.conftest import Variant, recorded
from tests.iam.replay import Report, replay

pytestmark = pytest.mark.xdist_group("iam")

Template = dict[str, Any]


@pytest.fixture(scope="module")
def hardened() -> Variant:
    return recorded("kms-lock-payers")


def replayed(
    variant: Variant, edit: Callable[[Template], None], *, payer: Callable[[Template], None] | None = None
) -> Report:
    template, payer_template = copy.deepcopy(variant.template), copy.deepcopy(variant.payer_template)
    edit(template)
    if payer is not None:
        payer(payer_template)
    return replay(variant.records, variant.archive(template, payer_template))


def resource(template: Template, prefix: str, cfn_type: str) -> dict[str, Any]:
    [found] = [
        r for lid, r in template["Resources"].items() if lid.startswith(prefix) and r["Type"] == cfn_type
    ]
    return found


def policy_statements(template: Template, prefix: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = resource(template, prefix, "AWS::IAM::Policy")["Properties"][
        "PolicyDocument"
    ]["Statement"]
    return statements


def statement(template: Template, prefix: str, sid: str) -> dict[str, Any]:
    [found] = [s for s in policy_statements(template, prefix) if s.get("Sid") == sid]
    return found


def logical_id(template: Template, prefix: str, cfn_type: str) -> str:
    [found] = [
        lid for lid, r in template["Resources"].items() if lid.startswith(prefix) and r["Type"] == cfn_type
    ]
    return found


def test_the_unedited_templates_pass(hardened: Variant) -> None:
    report = replayed(hardened, lambda _: None)
    assert not report.findings, report.failures()


def test_without_put_object_tagging_the_tagged_writes_are_refused(hardened: Variant) -> None:
    # Given the fetcher's write statement without s3:PutObjectTagging
    def edit(template: Template) -> None:
        statement(template, "PipelineFetcherPermissions", "WriteArchivePrefix")["Action"].remove(
            "s3:PutObjectTagging"
        )

    report = replayed(hardened, edit)
    # Then every tagged write is refused, named with its code and the missing grant
    message = report.failures()
    assert report.findings, "the replay passed without s3:PutObjectTagging"
    assert {f.action for f in report.findings} == {"s3:PutObjectTagging"}
    assert "fetcher: s3 PutObject (with Tagging, IfNoneMatch)" in message
    assert "s3 CreateMultipartUpload (with Tagging)" in message
    assert "from invoice_archiver/dal/archive.py:" in message
    assert "no statement allows it" in message
    assert "needed because: PutObject sends Tagging" in message


def test_without_the_ledger_statement_the_claims_are_refused(hardened: Variant) -> None:
    def edit(template: Template) -> None:
        statements = policy_statements(template, "PipelineFetcherPermissions")
        statements.remove(statement(template, "PipelineFetcherPermissions", "ReadWriteLedger"))

    report = replayed(hardened, edit)
    assert {f.action for f in report.findings} == {"dynamodb:UpdateItem"}
    assert {f.function for f in report.findings} == {"fetcher"}
    assert any("invoice_archiver/dal/ledger/" in f.origin for f in report.findings)


def test_without_the_key_grant_the_encrypted_sends_are_refused(hardened: Variant) -> None:
    # Given the lister's policy without its statement for the customer-managed key
    def edit(template: Template) -> None:
        statements = policy_statements(template, "PipelineListerPermissions")
        statements.remove(statement(template, "PipelineListerPermissions", "UseArchiveKey"))

    report = replayed(hardened, edit)
    # Then its sends to the encrypted queues need kms:GenerateDataKey, which the key policy leaves to IAM
    refused = {(f.action, f.call.split(" on ")[0]) for f in report.findings}
    assert ("kms:GenerateDataKey", "sqs SendMessageBatch") in refused
    assert ("kms:GenerateDataKey", "sqs SendMessage") in refused
    assert all(
        "the key policy lets IAM policies decide" in f.explanation
        for f in report.findings
        if f.action == "kms:GenerateDataKey"
    )


def test_a_key_policy_without_the_account_refuses_every_use_of_the_key(hardened: Variant) -> None:
    # Given a key policy that no longer lets IAM policies decide (no Allow for the account's root)
    def edit(template: Template) -> None:
        key = resource(template, "EncryptionKey", "AWS::KMS::Key")
        key["Properties"]["KeyPolicy"]["Statement"] = [
            s for s in key["Properties"]["KeyPolicy"]["Statement"] if "AWS" not in s.get("Principal", {})
        ]

    report = replayed(hardened, edit)
    assert {f.action for f in report.findings} == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert {f.function for f in report.findings} == {"lister", "fetcher"}
    assert all(
        "neither allows the role nor lets IAM policies decide" in f.explanation for f in report.findings
    )


def test_a_bucket_policy_deny_names_its_statement(hardened: Variant) -> None:
    # Given a bucket policy that, like the create-only rule turned around, denies creating writes that
    # send If-None-Match
    def edit(template: Template) -> None:
        bucket = logical_id(template, "StorageArchiveBucket", "AWS::S3::Bucket")
        policy = resource(template, "StorageArchiveBucketPolicy", "AWS::S3::BucketPolicy")
        policy["Properties"]["PolicyDocument"]["Statement"].append(
            {
                "Sid": "DenyConditionalWrites",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "s3:PutObject",
                "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/invoices/*"]]},
                "Condition": {
                    "Null": {"s3:if-none-match": "false"},
                    "Bool": {"s3:ObjectCreationOperation": "true"},
                },
            }
        )

    report = replayed(hardened, edit)
    # Then the creating writes (PutObject, CompleteMultipartUpload) are denied by it, the parts are not
    calls = {f.call.split(" (")[0] for f in report.findings}
    assert calls == {"s3 PutObject", "s3 CompleteMultipartUpload"}
    assert all("denied by StorageArchiveBucketPolicy" in f.explanation for f in report.findings)
    assert all("statement 'DenyConditionalWrites'" in f.explanation for f in report.findings)


def test_the_create_only_bucket_rule_of_the_trust_boundary_allows_our_writes(hardened: Variant) -> None:
    # Given the bucket Deny of issue 15: creating writes without If-None-Match are denied (parts exempt)
    def edit(template: Template) -> None:
        bucket = logical_id(template, "StorageArchiveBucket", "AWS::S3::Bucket")
        policy = resource(template, "StorageArchiveBucketPolicy", "AWS::S3::BucketPolicy")
        policy["Properties"]["PolicyDocument"]["Statement"].append(
            {
                "Sid": "DenyOverwritingTheArchive",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "s3:PutObject",
                "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/invoices/*"]]},
                "Condition": {
                    "Null": {"s3:if-none-match": "true"},
                    "Bool": {"s3:ObjectCreationOperation": "true"},
                },
            }
        )

    # Then every write of ours passes: each creating request sends If-None-Match
    report = replayed(hardened, edit)
    assert not report.findings, report.failures()


def test_a_queue_policy_that_admits_only_the_lister_refuses_the_fetchers_quarantine(
    hardened: Variant,
) -> None:
    # Given the dead-letter queue's policy denying sqs:SendMessage to anyone but the lister's role
    def edit(template: Template) -> None:
        queue = logical_id(template, "PipelineDeadLetterQueue", "AWS::SQS::Queue")
        lister_role = logical_id(template, "PipelineListerRole", "AWS::IAM::Role")
        policy = resource(template, "PipelineDeadLetterQueuePolicy", "AWS::SQS::QueuePolicy")
        policy["Properties"]["PolicyDocument"]["Statement"].append(
            {
                "Sid": "OnlyTheListerSends",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": [queue, "Arn"]},
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": [lister_role, "Arn"]}}},
            }
        )

    report = replayed(hardened, edit)
    # Then the fetcher's quarantine is denied, naming the statement; the lister's is not
    assert report.findings, "the replay passed with the fetcher shut out of the DLQ"
    assert {(f.function, f.action) for f in report.findings} == {("fetcher", "sqs:SendMessage")}
    for finding in report.findings:
        assert "invoice_archiver/dal/queue.py:" in finding.origin
        assert "PipelineDeadLetterQueuePolicy" in finding.explanation
        assert "'OnlyTheListerSends'" in finding.explanation


def test_a_payer_trust_for_the_lister_alone_refuses_the_fetchers_assume_role(hardened: Variant) -> None:
    # Given payer roles that trust, by aws:PrincipalArn, the lister's role only (besides the ExternalId)
    lister_arn = hardened.archive().function_principal("lister").arn

    def payer(template: Template) -> None:
        trust = template["Resources"]["PayerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
        trust["Condition"]["ArnEquals"] = {"aws:PrincipalArn": [lister_arn]}

    report = replayed(hardened, lambda _: None, payer=payer)
    assert {(f.function, f.action) for f in report.findings} == {("fetcher", "sts:AssumeRole")}
    assert all("the trust policy does not allow this principal" in f.explanation for f in report.findings)
    assert all("invoice_archiver/dal/sources.py:" in f.origin for f in report.findings)


def test_a_payer_trust_with_another_external_id_refuses_every_assume_role(hardened: Variant) -> None:
    def payer(template: Template) -> None:
        trust = template["Resources"]["PayerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
        trust["Condition"]["StringEquals"]["sts:ExternalId"] = "someone-else"

    report = replayed(hardened, lambda _: None, payer=payer)
    assert {(f.function, f.action) for f in report.findings} == {
        ("lister", "sts:AssumeRole"),
        ("fetcher", "sts:AssumeRole"),
    }


def test_a_payer_role_without_view_billing_refuses_the_invoicing_calls(hardened: Variant) -> None:
    def payer(template: Template) -> None:
        [policy] = template["Resources"]["PayerRole"]["Properties"]["Policies"]
        policy["PolicyDocument"]["Statement"][0]["Action"].remove("aws-portal:ViewBilling")

    report = replayed(hardened, lambda _: None, payer=payer)
    assert {f.action for f in report.findings} == {"aws-portal:ViewBilling"}
    assert {f.call.split(" ")[1] for f in report.findings} == {
        "ListInvoiceSummaries",
        "GetInvoicePDF",
        "ListInvoiceUnits",
    }
    assert all(f.principal.startswith("payer role arn:aws:iam::") for f in report.findings)


def test_without_the_event_source_grant_lambda_cannot_poll_the_queue(hardened: Variant) -> None:
    def edit(template: Template) -> None:
        for s in policy_statements(template, "PipelineFetcherRoleDefaultPolicy"):
            if isinstance(s["Action"], list) and "sqs:ReceiveMessage" in s["Action"]:
                s["Action"].remove("sqs:ReceiveMessage")

    report = replayed(hardened, edit)
    [finding] = report.findings
    assert (finding.function, finding.action) == ("fetcher", "sqs:ReceiveMessage")
    assert finding.call == "(Lambda on the function's behalf)"


def test_a_grant_nothing_needs_is_reported(hardened: Variant) -> None:
    # Given one more action on the fetcher's ledger statement, one no call needs
    def edit(template: Template) -> None:
        statement(template, "PipelineFetcherPermissions", "ReadWriteLedger")["Action"].append("dynamodb:Scan")

    report = replayed(hardened, edit)
    assert not report.findings
    [unused] = report.unused
    assert "the fetcher's role" in unused
    assert "'ReadWriteLedger' grants dynamodb:Scan on arn:aws:dynamodb:" in unused
