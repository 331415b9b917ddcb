"""checkov: every finding the stack does not fix is skipped on its own resource, with a reason.

`make synth` runs checkov on the template and fails on any failed check. These tests pin which checks each
resource skips, in both variants, so a new unexplained finding, a skip on the wrong resource, or a lost
reason fails here; and they check that the findings the stack fixes stay fixed.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match
from infra_synth import REPO_ROOT, Synth

from invoice_archiver.infra import checkov

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"

LAMBDA_WITHOUT_DLQ_VPC_OR_RESERVED_CONCURRENCY = {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_115"}

# (resource type, logical-id prefix) -> the checkov ids skipped on it. Nothing else skips anything.
EXPECTED_SKIPS: dict[str, dict[tuple[str, str], set[str]]] = {
    "default": {
        ("AWS::S3::Bucket", "StorageAccessLogBucket"): {"CKV_AWS_18"},
        ("AWS::DynamoDB::Table", "StorageLedgerTable"): {"CKV_AWS_119"},
        ("AWS::SQS::Queue", "PipelineDeadLetterQueue"): {"CKV_AWS_27"},
        ("AWS::SQS::Queue", "PipelineInvoiceQueue"): {"CKV_AWS_27"},
        ("AWS::SQS::Queue", "PipelineListingQueue"): {"CKV_AWS_27"},
        ("AWS::SQS::Queue", "ScheduleDeadLetterQueue"): {"CKV_AWS_27"},
        ("AWS::Logs::LogGroup", "PipelineListerLogGroup"): {"CKV_AWS_158"},
        ("AWS::Logs::LogGroup", "PipelineFetcherLogGroup"): {"CKV_AWS_158"},
        ("AWS::Lambda::Function", "PipelineLister"): LAMBDA_WITHOUT_DLQ_VPC_OR_RESERVED_CONCURRENCY
        | {"CKV_AWS_173"},
        ("AWS::Lambda::Function", "PipelineFetcher"): LAMBDA_WITHOUT_DLQ_VPC_OR_RESERVED_CONCURRENCY
        | {"CKV_AWS_173"},
    },
    # With the CMK, the ledger, the pipeline's queues, the log groups and the functions' environment
    # are encrypted with it: those skips are gone.
    "hardened": {
        ("AWS::S3::Bucket", "StorageAccessLogBucket"): {"CKV_AWS_18"},
        ("AWS::SQS::Queue", "ScheduleDeadLetterQueue"): {"CKV_AWS_27"},
        ("AWS::Lambda::Function", "PipelineLister"): LAMBDA_WITHOUT_DLQ_VPC_OR_RESERVED_CONCURRENCY,
        ("AWS::Lambda::Function", "PipelineFetcher"): LAMBDA_WITHOUT_DLQ_VPC_OR_RESERVED_CONCURRENCY,
    },
}

REASONS = {value.reason for value in vars(checkov).values() if isinstance(value, checkov.Finding)}


def skips(synth: Synth) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(resource type, logical id) -> its checkov skip entries, for every resource that has any."""
    resources: dict[str, dict[str, Any]] = synth.template.to_json()["Resources"]
    return {
        (resource["Type"], logical_id): resource["Metadata"]["checkov"]["skip"]
        for logical_id, resource in resources.items()
        if "checkov" in resource.get("Metadata", {})
    }


@pytest.mark.parametrize("variant", ["default", "hardened"])
def test_skipped_checks_are_exactly_the_expected_ones_per_resource(
    variant: str, request: pytest.FixtureRequest
) -> None:
    # Given the synthesized stack
    synth: Synth = request.getfixturevalue(variant)
    # When we collect the checkov skips from every resource's metadata
    found = {key: {entry["id"] for entry in entries} for key, entries in skips(synth).items()}
    # Then each resource skips exactly the checks expected of it, and no other resource skips any
    expected = {
        (cfn_type, synth.logical_id(prefix, cfn_type)): ids
        for (cfn_type, prefix), ids in EXPECTED_SKIPS[variant].items()
    }
    assert found == expected


@pytest.mark.parametrize("variant", ["default", "hardened"])
def test_every_skip_carries_a_reason_from_the_checkov_module(
    variant: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    for (cfn_type, logical_id), entries in skips(synth).items():
        ids = [entry["id"] for entry in entries]
        assert len(ids) == len(set(ids)), f"{logical_id}: a check skipped twice: {ids}"
        for entry in entries:
            assert set(entry) == {"id", "comment"}, f"{logical_id}: {entry}"
            assert re.fullmatch(r"CKV_AWS_\d+", entry["id"]), f"{logical_id}: {entry['id']}"
            comment = entry["comment"]
            assert isinstance(comment, str), f"{logical_id}: {entry}"
            assert len(comment.strip()) >= 80, f"{logical_id}: {entry}"
            # Every reason is one of the reviewed texts in invoice_archiver.infra.checkov
            assert comment in REASONS, f"{cfn_type} {logical_id}: reason not from the checkov module"


def test_the_lambda_function_keeps_its_cfn_lint_metadata(default: Synth) -> None:
    # Skipping checkov checks adds to the resource's metadata; it must not replace cfn-lint's.
    for prefix in ("PipelineLister", "PipelineFetcher"):
        logical_id = default.logical_id(prefix, "AWS::Lambda::Function")
        metadata = default.resources("AWS::Lambda::Function")[logical_id]["Metadata"]
        assert metadata["cfn-lint"] == {"config": {"ignore_checks": ["W3005"]}}
        assert metadata["checkov"]["skip"]


# What was fixed rather than skipped ------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["default", "hardened"])
def test_access_log_bucket_is_versioned_and_cleans_up_old_versions(
    variant: str, request: pytest.FixtureRequest
) -> None:
    # CKV_AWS_21: an overwritten or deleted access log can be recovered, for a bounded time
    synth: Synth = request.getfixturevalue(variant)
    logical_id = synth.logical_id("StorageAccessLogBucket", "AWS::S3::Bucket")
    properties = synth.resources("AWS::S3::Bucket")[logical_id]["Properties"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = properties["LifecycleConfiguration"]["Rules"]
    assert rules[0]["Id"] == "ExpireAccessLogs"
    assert rules[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert {
        "Id": "RemoveExpiredDeleteMarkers",
        "ExpiredObjectDeleteMarker": True,
        "Status": "Enabled",
    } in rules


def test_with_the_cmk_log_groups_and_function_environments_use_it(hardened: Synth) -> None:
    # CKV_AWS_158 and CKV_AWS_173 are fixed when a CMK is configured
    key = {"Fn::GetAtt": [hardened.logical_id("EncryptionKey", "AWS::KMS::Key"), "Arn"]}
    for name in ("Lister", "Fetcher"):
        log_group = hardened.logical_id(f"Pipeline{name}LogGroup", "AWS::Logs::LogGroup")
        assert hardened.resources("AWS::Logs::LogGroup")[log_group]["Properties"]["KmsKeyId"] == key
        fn = hardened.logical_id(f"Pipeline{name}", "AWS::Lambda::Function")
        assert hardened.resources("AWS::Lambda::Function")[fn]["Properties"]["KmsKeyArn"] == key
    # And the key policy lets CloudWatch Logs use the key, for this account's and region's log groups only
    hardened.template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
                                "Condition": {
                                    "ArnLike": {
                                        "kms:EncryptionContext:aws:logs:arn": (
                                            "arn:aws:logs:eu-west-1:123456789012:log-group:*"
                                        )
                                    }
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_without_the_cmk_log_groups_and_environments_use_aws_managed_keys(default: Synth) -> None:
    for name in ("Lister", "Fetcher"):
        log_group = default.logical_id(f"Pipeline{name}LogGroup", "AWS::Logs::LogGroup")
        assert "KmsKeyId" not in default.resources("AWS::Logs::LogGroup")[log_group]["Properties"]
        fn = default.logical_id(f"Pipeline{name}", "AWS::Lambda::Function")
        assert "KmsKeyArn" not in default.resources("AWS::Lambda::Function")[fn]["Properties"]


# The helper -------------------------------------------------------------------------------------------


def test_skip_merges_with_earlier_skips_and_refuses_a_duplicate() -> None:
    stack = cdk.Stack(cdk.App(), "SkipHelper")
    queue = sqs.Queue(stack, "Queue")
    cfn_queue = queue.node.default_child
    assert isinstance(cfn_queue, sqs.CfnQueue)
    # Given a skip on the L2 construct, and another on its CloudFormation resource
    checkov.skip(queue, checkov.QUEUE_SQS_MANAGED_SSE)
    checkov.skip(cfn_queue, checkov.NO_VPC)
    # Then the resource's metadata lists both, in order, each with its reason
    assert stack.resolve(cfn_queue.get_metadata("checkov")) == {
        "skip": [
            {"id": "CKV_AWS_27", "comment": checkov.QUEUE_SQS_MANAGED_SSE.reason},
            {"id": "CKV_AWS_117", "comment": checkov.NO_VPC.reason},
        ]
    }
    # And the same check cannot be skipped twice on one resource
    with pytest.raises(AssertionError, match="CKV_AWS_27 is already skipped"):
        checkov.skip(queue, checkov.SCHEDULE_DLQ_SQS_MANAGED_SSE)


# checkov itself, on both variants (where `make synth` has installed it) ---------------------------------


@pytest.mark.skipif(not CHECKOV.exists(), reason="make test installs checkov (.venv-checkov)")
@pytest.mark.parametrize("variant", ["default", "hardened"])
def test_checkov_reports_no_failed_check(
    variant: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    template = tmp_path / f"{variant}.template.json"
    template.write_text(json.dumps(synth.template.to_json()))
    result = subprocess.run(
        [
            *(str(CHECKOV), "--framework", "cloudformation", "--quiet", "--compact", "--skip-download"),
            *("--output", "json", "--file", str(template)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert result.returncode == 0, result.stderr
    skipped = sum(len(ids) for ids in EXPECTED_SKIPS[variant].values())
    assert report["summary"]["skipped"] == skipped
