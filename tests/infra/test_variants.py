"""Optional settings: customer-managed KMS key, Object Lock, e-mail, explicit accounts, another region."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match
from infra_synth import Synth

from invoice_archiver.constants import FETCHER_HANDLER, LISTER_HANDLER


def getatt(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def statements(synth: Synth, prefix: str) -> list[dict[str, Any]]:
    logical_id = synth.logical_id(prefix, "AWS::IAM::Policy")
    found: list[dict[str, Any]] = synth.resources("AWS::IAM::Policy")[logical_id]["Properties"][
        "PolicyDocument"
    ]["Statement"]
    return found


def test_object_lock_is_compliance_mode_in_whole_years(hardened: Synth) -> None:
    # Given object_lock_enabled=true and object_lock_retention_years=7
    # When the archive bucket is synthesized
    # Then Object Lock is on, in COMPLIANCE mode, with a default retention of 7 years, on a versioned bucket
    hardened.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "ObjectLockEnabled": True,
            "ObjectLockConfiguration": {
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 7}},
            },
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    )
    # And the access logs still go to the separate bucket, which has no Object Lock
    log_bucket = hardened.logical_id("StorageAccessLogBucket", "AWS::S3::Bucket")
    assert "ObjectLockEnabled" not in hardened.resources("AWS::S3::Bucket")[log_bucket]["Properties"]
    hardened.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "ObjectLockEnabled": True,
            "LoggingConfiguration": {
                "DestinationBucketName": {"Ref": log_bucket},
                "LogFilePrefix": Match.any_value(),
            },
        },
    )


def test_one_rotating_retained_cmk_encrypts_bucket_table_queues_and_topic(hardened: Synth) -> None:
    # Given kms_enabled=true
    key = hardened.logical_id("EncryptionKey", "AWS::KMS::Key")
    # Then the key rotates yearly and outlives the stack (the archive it decrypts does)
    hardened.template.has_resource(
        "AWS::KMS::Key",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like({"EnableKeyRotation": True, "RotationPeriodInDays": 365}),
        },
    )
    # And the archive bucket uses it with an S3 bucket key
    hardened.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "ObjectLockEnabled": True,
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": getatt(key),
                        },
                    }
                ]
            },
        },
    )
    # And the ledger, the invoice queue, its DLQ and the alarm topic too (no separate topic key)
    hardened.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": getatt(key)},
        },
    )
    for prefix in ("PipelineInvoiceQueue", "PipelineDeadLetterQueue"):
        queue = hardened.logical_id(prefix, "AWS::SQS::Queue")
        assert hardened.resources("AWS::SQS::Queue")[queue]["Properties"]["KmsMasterKeyId"] == getatt(key)
    hardened.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": getatt(key)})
    assert len(hardened.resources("AWS::KMS::Key")) == 1
    # And the schedule's DLQ keeps SQS-managed encryption (EventBridge writes to it)
    schedule_dlq = hardened.logical_id("ScheduleDeadLetterQueue", "AWS::SQS::Queue")
    assert hardened.resources("AWS::SQS::Queue")[schedule_dlq]["Properties"]["SqsManagedSseEnabled"] is True


def test_functions_may_use_the_key_and_nothing_more(hardened: Synth) -> None:
    key = hardened.logical_id("EncryptionKey", "AWS::KMS::Key")
    assert statements(hardened, "PipelineListerPermissions")[-1] == {
        "Sid": "UseArchiveKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": getatt(key),
    }
    assert statements(hardened, "PipelineFetcherPermissions")[-1] == {
        "Sid": "UseArchiveKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": getatt(key),
    }
    # The event source adds kms:Decrypt for reading the encrypted queue, on the key only
    assert {
        "Action": "kms:Decrypt",
        "Effect": "Allow",
        "Resource": getatt(key),
    } in statements(hardened, "PipelineFetcherRoleDefaultPolicy")


def test_alarm_email_subscribes_to_the_topic(hardened: Synth) -> None:
    topic = hardened.logical_id("MonitoringAlarmTopic", "AWS::SNS::Topic")
    hardened.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "billing-ops@example.com",
            "TopicArn": {"Ref": topic},
        },
    )


def test_accounts_roles_and_region_reach_the_functions_and_the_layer(hardened: Synth) -> None:
    _, lister = hardened.only("AWS::Lambda::Function", Handler=LISTER_HANDLER)
    variables = lister["Properties"]["Environment"]["Variables"]
    assert variables["ACCOUNT_IDS"] == "111111111111,222222222222"
    assert variables["RECEIVER_ROLES"] == "SELLER,BUYER"
    # The Invoicing API stays in us-east-1 even when the stack is elsewhere
    assert variables["INVOICING_REGION"] == "us-east-1"
    _, fetcher = hardened.only("AWS::Lambda::Function", Handler=FETCHER_HANDLER)
    assert fetcher["Properties"]["Layers"][0] == (
        "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:38"
    )
    assert fetcher["Properties"]["Layers"][1]["Ref"].startswith("PipelineSdkLayer")
    assert hardened.stack.region == "eu-west-1"
    assert hardened.stack.account == "123456789012"


def test_tuning_settings_flow_into_the_template(synth_with: Any) -> None:
    # Given the lead's benchmark-driven settings
    tuned: Synth = synth_with(
        {
            "fetcher_timeout_seconds": "600",
            "fetcher_memory_mb": "768",
            "fetcher_ephemeral_storage_mib": "4096",
            "fetcher_max_concurrency": "3",
            "max_receive_count": "8",
            "lifecycle_infrequent_access_days": "0",
            "lifecycle_archive_days": "0",
            "schedule_enabled": "false",
            "schedule_expression": "cron(0 7 3 * ? *)",
            "powertools_layer_version": "30",
            "log_retention_days": "365",
            "unsettled_after_days": "5",
        }
    )
    # Then the fetcher, queue, event source, lifecycle and schedule follow (values given as -c strings)
    _, fetcher = tuned.only("AWS::Lambda::Function", Handler=FETCHER_HANDLER)
    assert fetcher["Properties"]["Timeout"] == 600
    assert fetcher["Properties"]["MemorySize"] == 768
    assert fetcher["Properties"]["EphemeralStorage"] == {"Size": 4096}
    assert fetcher["Properties"]["Layers"][0].endswith("AWSLambdaPowertoolsPythonV3-python314-arm64:30")
    assert int(fetcher["Properties"]["Environment"]["Variables"]["LEASE_SECONDS"]) == 900
    tuned.template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": 3600,
            "RedrivePolicy": Match.object_like({"maxReceiveCount": 8}),
        },
    )
    tuned.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "ScalingConfig": {"MaximumConcurrency": 3},
        },
    )
    tuned.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "cron(0 7 3 * ? *)",
            "State": "DISABLED",
        },
    )
    archive = tuned.logical_id("StorageArchiveBucket", "AWS::S3::Bucket")
    rules = tuned.resources("AWS::S3::Bucket")[archive]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert "Transitions" not in rules[0]
    tuned.template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 365})
    # ... and the unsettled-invoice alarm and the lister agree on its setting
    _, lister = tuned.only("AWS::Lambda::Function", Handler=LISTER_HANDLER)
    assert lister["Properties"]["Environment"]["Variables"]["UNSETTLED_AFTER_DAYS"] == "5"
    tuned.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "InvoicesUnsettled",
            "AlarmDescription": Match.string_like_regexp(" 5 days after it was first claimed"),
        },
    )
