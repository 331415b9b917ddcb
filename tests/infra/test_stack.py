"""The stack as cdk.json configures it: what each resource must look like."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match
from infra_synth import Synth

from invoice_archiver.config import env_var_names
from invoice_archiver.constants import (
    FETCHER_HANDLER,
    LEDGER_PARTITION_KEY,
    LEDGER_SORT_KEY,
    LISTER_HANDLER,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    UNSETTLED_INDEX,
    UNSETTLED_PROJECTED,
    UNSETTLED_SINCE,
    Metric,
)
from invoice_archiver.infra.constants import LOCAL_ONLY_ENV_VARS, VISIBILITY_TIMEOUT_FACTOR, OutputKey

POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


def getatt(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def function(synth: Synth, handler: str) -> tuple[str, dict[str, Any]]:
    return synth.only("AWS::Lambda::Function", Handler=handler)


def policy_statements(synth: Synth, policy_prefix: str) -> list[dict[str, Any]]:
    logical_id = synth.logical_id(policy_prefix, "AWS::IAM::Policy")
    statements: list[dict[str, Any]] = synth.resources("AWS::IAM::Policy")[logical_id]["Properties"][
        "PolicyDocument"
    ]["Statement"]
    return statements


# Lambda functions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "timeout", "memory", "ephemeral"),
    [
        (LISTER_HANDLER, 600, 256, 512),
        (FETCHER_HANDLER, 300, 1024, 2048),
    ],
)
def test_functions_run_arm64_python314_with_the_published_powertools_layer(
    default: Synth, handler: str, timeout: int, memory: int, ephemeral: int
) -> None:
    # Given the stack synthesized from cdk.json
    # When we look at each function
    # Then it is arm64, the newest Python, the Powertools layer by ARN then the stack's own SDK layer,
    # traced, JSON logs
    default.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": handler,
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Layers": [
                "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:38",
                {"Ref": Match.string_like_regexp("^PipelineSdkLayer")},
            ],
            "Timeout": timeout,
            "MemorySize": memory,
            "EphemeralStorage": {"Size": ephemeral},
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {"LogFormat": "JSON", "LogGroup": {"Ref": Match.string_like_regexp("LogGroup")}},
        },
    )


@pytest.mark.parametrize(("name", "handler"), [("lister", LISTER_HANDLER), ("fetcher", FETCHER_HANDLER)])
def test_environment_is_exactly_what_the_function_reads(default: Synth, name: str, handler: str) -> None:
    # Given invoice_archiver.env_vars.ENV_VARS, the single source of truth for the functions' variables
    expected = set(env_var_names(name)) - LOCAL_ONLY_ENV_VARS  # type: ignore[arg-type]
    # When we read the function's environment in the template
    _, resource = function(default, handler)
    variables = resource["Properties"]["Environment"]["Variables"]
    # Then every variable it reads is set (local-only switches never), plus Powertools' own, nothing else
    assert set(variables) == expected | POWERTOOLS_ENV
    assert not LOCAL_ONLY_ENV_VARS & set(variables)
    assert variables["POWERTOOLS_SERVICE_NAME"] == SERVICE_NAME
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"


def test_environment_points_at_the_stacks_resources(default: Synth) -> None:
    # Given the stack's bucket, table and queues
    bucket = default.logical_id("StorageArchiveBucket", "AWS::S3::Bucket")
    table = default.logical_id("StorageLedgerTable", "AWS::DynamoDB::Table")
    queue = default.logical_id("PipelineInvoiceQueue", "AWS::SQS::Queue")
    dlq = default.logical_id("PipelineDeadLetterQueue", "AWS::SQS::Queue")
    # When we read the functions' environments
    lister = function(default, LISTER_HANDLER)[1]["Properties"]["Environment"]["Variables"]
    fetcher = function(default, FETCHER_HANDLER)[1]["Properties"]["Environment"]["Variables"]
    # Then they reference them, and the defaults come from invoice_archiver.config.Settings
    assert lister["INVOICE_QUEUE_URL"] == {"Ref": queue}
    assert lister["ACCOUNT_IDS"] == {"Ref": "AWS::AccountId"}
    assert lister["RECEIVER_ROLES"] == ""
    assert lister["LOOKBACK_PERIODS"] == "2"
    assert fetcher["ARCHIVE_BUCKET"] == {"Ref": bucket}
    assert fetcher["ARCHIVE_PREFIX"] == "invoices"
    assert fetcher["LEDGER_TABLE"] == {"Ref": table}
    assert fetcher["DEAD_LETTER_QUEUE_URL"] == {"Ref": dlq}
    assert fetcher["SPOOL_DIRECTORY"] == "/tmp"
    assert fetcher["INVOICING_REGION"] == "us-east-1"


def test_lease_covers_the_fetcher_timeout_and_fits_in_the_visibility_timeout(default: Synth) -> None:
    # Given the fetcher and its queue
    _, fetcher = function(default, FETCHER_HANDLER)
    timeout = fetcher["Properties"]["Timeout"]
    lease = int(fetcher["Properties"]["Environment"]["Variables"]["LEASE_SECONDS"])
    _, queue = default.only("AWS::SQS::Queue", VisibilityTimeout=VISIBILITY_TIMEOUT_FACTOR * timeout)
    # Then a claim outlives one invocation, and has expired before SQS redelivers the message
    assert timeout <= lease <= queue["Properties"]["VisibilityTimeout"]


@pytest.mark.parametrize("name", ["Lister", "Fetcher"])
def test_each_function_has_its_own_log_group_with_retention(default: Synth, name: str) -> None:
    # Given a function, When we look at its log group, Then it keeps logs 90 days (cdk.json)
    logical_id = default.logical_id(f"Pipeline{name}LogGroup", "AWS::Logs::LogGroup")
    default.template.has_resource("AWS::Logs::LogGroup", {"Properties": {"RetentionInDays": 90}})
    _, fn = function(default, LISTER_HANDLER if name == "Lister" else FETCHER_HANDLER)
    assert fn["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": logical_id}


# Queues and event source ---------------------------------------------------------------------------


def test_invoice_queue_visibility_is_six_times_fetcher_timeout_and_redrives_to_the_dlq(
    default: Synth,
) -> None:
    # Given the fetcher's timeout
    timeout = function(default, FETCHER_HANDLER)[1]["Properties"]["Timeout"]
    dlq = default.logical_id("PipelineDeadLetterQueue", "AWS::SQS::Queue")
    # Then the invoice queue's visibility timeout is at least 6x that, and it redrives after 5 receives
    default.template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": Match.any_value(),
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {"deadLetterTargetArn": getatt(dlq), "maxReceiveCount": 5},
        },
    )
    queue = default.template.to_json()["Resources"][
        default.logical_id("PipelineInvoiceQueue", "AWS::SQS::Queue")
    ]
    assert queue["Properties"]["RedrivePolicy"] == {"deadLetterTargetArn": getatt(dlq), "maxReceiveCount": 5}
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_listings_continue_through_a_queue_the_lister_consumes_one_at_a_time(default: Synth) -> None:
    # Given the lister's timeout and the listing queue
    lister_id, lister = function(default, LISTER_HANDLER)
    listing = default.logical_id("PipelineListingQueue", "AWS::SQS::Queue")
    dlq = default.logical_id("PipelineDeadLetterQueue", "AWS::SQS::Queue")
    queue = default.template.to_json()["Resources"][listing]["Properties"]
    # Then a continuation is redelivered only after the invocation that took it is over, and a
    # continuation that keeps failing goes to the DLQ
    assert queue["VisibilityTimeout"] == lister["Properties"]["Timeout"] + 60
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": getatt(dlq), "maxReceiveCount": 5}
    assert queue["SqsManagedSseEnabled"] is True
    # And the lister reads it one record per invocation
    default.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": getatt(listing),
            "FunctionName": {"Ref": lister_id},
            "BatchSize": 1,
            "ScalingConfig": {"MaximumConcurrency": 2},
        },
    )
    # And the lister knows where to continue, and when to stop (60 s before its timeout)
    env = lister["Properties"]["Environment"]["Variables"]
    assert env["LISTING_QUEUE_URL"] == {"Ref": listing}
    assert env["LISTING_RESERVE_SECONDS"] == "60"


@pytest.mark.parametrize("prefix", ["PipelineDeadLetterQueue", "ScheduleDeadLetterQueue"])
def test_dead_letter_queues_keep_messages_14_days_encrypted(default: Synth, prefix: str) -> None:
    logical_id = default.logical_id(prefix, "AWS::SQS::Queue")
    properties = default.resources("AWS::SQS::Queue")[logical_id]["Properties"]
    assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert properties["SqsManagedSseEnabled"] is True


def test_every_queue_denies_non_tls_requests(default: Synth) -> None:
    # Given three queues, Then each has a queue policy denying aws:SecureTransport false
    queues = set(default.resources("AWS::SQS::Queue"))
    protected = set()
    for policy in default.resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ):
            protected |= {ref["Ref"] for ref in policy["Properties"]["Queues"]}
    assert protected == queues


def test_fetcher_consumes_the_queue_with_partial_batch_responses_and_bounded_concurrency(
    default: Synth,
) -> None:
    queue = default.logical_id("PipelineInvoiceQueue", "AWS::SQS::Queue")
    fetcher, _ = function(default, FETCHER_HANDLER)
    default.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": getatt(queue),
            "FunctionName": {"Ref": fetcher},
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 5,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 5},
        },
    )


# IAM -----------------------------------------------------------------------------------------------


def test_each_function_has_its_own_role_without_managed_policies(default: Synth) -> None:
    roles = default.resources("AWS::IAM::Role")
    assert len(roles) == 2
    for role in roles.values():
        assert "ManagedPolicyArns" not in role["Properties"]
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ]
    listers = {
        function(default, h)[1]["Properties"]["Role"]["Fn::GetAtt"][0]
        for h in (LISTER_HANDLER, FETCHER_HANDLER)
    }
    assert listers == set(roles)


def test_lister_permissions_are_exactly_these(default: Synth) -> None:
    log_group = default.logical_id("PipelineListerLogGroup", "AWS::Logs::LogGroup")
    queue = default.logical_id("PipelineInvoiceQueue", "AWS::SQS::Queue")
    assert policy_statements(default, "PipelineListerPermissions") == [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {"Fn::Join": ["", [getatt(log_group), ":*"]]},
        },
        # Invoicing has no resource-level permissions: "*" is the only valid Resource
        {
            "Sid": "ListInvoices",
            "Effect": "Allow",
            "Action": ["invoicing:ListInvoiceSummaries", "aws-portal:ViewBilling"],
            "Resource": "*",
        },
        {
            "Sid": "SendToInvoiceQueue",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": getatt(queue),
        },
        # A listing that nears its invocation's end continues through the listing queue
        {
            "Sid": "ContinueListing",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": getatt(default.logical_id("PipelineListingQueue", "AWS::SQS::Queue")),
        },
        # A summary that cannot become a message is quarantined to the DLQ, with its reason
        {
            "Sid": "QuarantineToDeadLetterQueue",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": getatt(default.logical_id("PipelineDeadLetterQueue", "AWS::SQS::Queue")),
        },
        # One Query per account and period, to enqueue only what is new, changed or due; and one per
        # account on the index of unsettled invoices (that index only: not any other the table may get)
        {
            "Sid": "ReadLedger",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": [
                getatt(default.logical_id("StorageLedgerTable", "AWS::DynamoDB::Table")),
                {
                    "Fn::Join": [
                        "",
                        [
                            getatt(default.logical_id("StorageLedgerTable", "AWS::DynamoDB::Table")),
                            f"/index/{UNSETTLED_INDEX}",
                        ],
                    ]
                },
            ],
        },
        # A source's FAILED record, written with its reason and cleared when it lists cleanly again
        {
            "Sid": "RecordSourceStatus",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "Resource": getatt(default.logical_id("StorageLedgerTable", "AWS::DynamoDB::Table")),
        },
    ]
    # CDK's additions: X-Ray for tracing, and the event source's consume permissions on the listing queue
    assert policy_statements(default, "PipelineListerRoleDefaultPolicy") == [
        {"Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Effect": "Allow", "Resource": "*"},
        {
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
            ],
            "Effect": "Allow",
            "Resource": getatt(default.logical_id("PipelineListingQueue", "AWS::SQS::Queue")),
        },
    ]


def test_fetcher_permissions_are_exactly_these(default: Synth) -> None:
    log_group = default.logical_id("PipelineFetcherLogGroup", "AWS::Logs::LogGroup")
    bucket = default.logical_id("StorageArchiveBucket", "AWS::S3::Bucket")
    table = default.logical_id("StorageLedgerTable", "AWS::DynamoDB::Table")
    queue = default.logical_id("PipelineInvoiceQueue", "AWS::SQS::Queue")
    dlq = default.logical_id("PipelineDeadLetterQueue", "AWS::SQS::Queue")
    assert policy_statements(default, "PipelineFetcherPermissions") == [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {"Fn::Join": ["", [getatt(log_group), ":*"]]},
        },
        # ListInvoiceSummaries: each invoice is confirmed with the API before anything is archived
        {
            "Sid": "ReadInvoices",
            "Effect": "Allow",
            "Action": ["invoicing:ListInvoiceSummaries", "invoicing:GetInvoicePDF", "aws-portal:ViewBilling"],
            "Resource": "*",
        },
        # Writes (and the reads it needs to resume) only under the archive prefix
        {
            "Sid": "WriteArchivePrefix",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:AbortMultipartUpload"],
            "Resource": {"Fn::Join": ["", [getatt(bucket), "/invoices/*"]]},
        },
        {
            "Sid": "ListArchiveBucket",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": getatt(bucket),
        },
        {
            "Sid": "ReadWriteLedger",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            "Resource": getatt(table),
        },
        {
            "Sid": "QuarantineToDeadLetterQueue",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": getatt(dlq),
        },
        # Invoice Archived / Invoice Revised, on the configured bus (default: `default`) only
        {
            "Sid": "PublishInvoiceEvents",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": {
                "Fn::Join": [
                    "",
                    ["arn:aws:events:us-east-1:", {"Ref": "AWS::AccountId"}, ":event-bus/default"],
                ]
            },
        },
    ]
    # CDK's additions: X-Ray for tracing, and the event source's consume permissions on the queue only
    assert policy_statements(default, "PipelineFetcherRoleDefaultPolicy") == [
        {"Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Effect": "Allow", "Resource": "*"},
        {
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
            ],
            "Effect": "Allow",
            "Resource": getatt(queue),
        },
    ]


def test_no_other_iam_policies_exist(default: Synth) -> None:
    assert sorted(default.resources("AWS::IAM::Policy")) == sorted(
        default.logical_id(prefix, "AWS::IAM::Policy")
        for prefix in (
            "PipelineListerPermissions",
            "PipelineListerRoleDefaultPolicy",
            "PipelineFetcherPermissions",
            "PipelineFetcherRoleDefaultPolicy",
        )
    )


# Storage -------------------------------------------------------------------------------------------


def test_archive_bucket_is_private_versioned_encrypted_logged_and_on_eventbridge(default: Synth) -> None:
    log_bucket = default.logical_id("StorageAccessLogBucket", "AWS::S3::Bucket")
    default.template.has_resource(
        "AWS::S3::Bucket",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "LoggingConfiguration": {
                        "DestinationBucketName": {"Ref": log_bucket},
                        "LogFilePrefix": "archive-bucket/",
                    },
                    "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                }
            ),
        },
    )
    bucket = default.logical_id("StorageArchiveBucket", "AWS::S3::Bucket")
    assert "ObjectLockEnabled" not in default.resources("AWS::S3::Bucket")[bucket]["Properties"]
    # No custom-resource Lambda was needed for the notifications
    assert not default.resources("Custom::S3BucketNotifications")


def test_archive_bucket_lifecycle_tiers_and_cleans_up(default: Synth) -> None:
    default.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "TierCurrentVersions",
                        "Status": "Enabled",
                        "Transitions": [
                            {"StorageClass": "STANDARD_IA", "TransitionInDays": 90},
                            {"StorageClass": "GLACIER_IR", "TransitionInDays": 365},
                        ],
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                    }
                ]
            },
        },
    )


def test_access_log_bucket_is_separate_private_sse_s3_and_retained(default: Synth) -> None:
    logical_id = default.logical_id("StorageAccessLogBucket", "AWS::S3::Bucket")
    resource = default.resources("AWS::S3::Bucket")[logical_id]
    assert resource["DeletionPolicy"] == "Retain"
    properties = resource["Properties"]
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert properties["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 365
    assert "ObjectLockEnabled" not in properties


@pytest.mark.parametrize("prefix", ["StorageArchiveBucket", "StorageAccessLogBucket"])
def test_buckets_deny_non_tls_and_old_tls(default: Synth, prefix: str) -> None:
    bucket = default.logical_id(prefix, "AWS::S3::Bucket")
    default.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ),
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}},
                            }
                        ),
                    ]
                )
            },
        },
    )


def test_ledger_is_on_demand_recoverable_encrypted_and_retained(default: Synth) -> None:
    default.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "KeySchema": [
                    {"AttributeName": LEDGER_PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": LEDGER_SORT_KEY, "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": LEDGER_PARTITION_KEY, "AttributeType": "S"},
                    {"AttributeName": LEDGER_SORT_KEY, "AttributeType": "S"},
                    {"AttributeName": UNSETTLED_SINCE, "AttributeType": "S"},
                ],
                "BillingMode": "PAY_PER_REQUEST",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
                "DeletionProtectionEnabled": True,
                "Tags": Match.any_value(),
                "GlobalSecondaryIndexes": Match.any_value(),
            },
        },
    )


def test_ledger_has_one_sparse_index_of_unsettled_invoices_by_account(default: Synth) -> None:
    # The only index: by account, sorted by when the invoice became unsettled; only unsettled items hold
    # that attribute (the index is sparse), and it projects what the lister needs to re-queue them
    _, table = default.only("AWS::DynamoDB::Table")
    assert table["Properties"]["GlobalSecondaryIndexes"] == [
        {
            "IndexName": UNSETTLED_INDEX,
            "KeySchema": [
                {"AttributeName": LEDGER_PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": UNSETTLED_SINCE, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(UNSETTLED_PROJECTED)},
        }
    ]


# Schedule ------------------------------------------------------------------------------------------


def test_schedule_invokes_the_lister_with_retries_and_a_dlq(default: Synth) -> None:
    lister, _ = function(default, LISTER_HANDLER)
    dlq = default.logical_id("ScheduleDeadLetterQueue", "AWS::SQS::Queue")
    default.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "cron(0 6 * * ? *)",
            "State": "ENABLED",
            "Targets": [
                {
                    "Arn": getatt(lister),
                    "Id": Match.any_value(),
                    "DeadLetterConfig": {"Arn": getatt(dlq)},
                    "RetryPolicy": {"MaximumEventAgeInSeconds": 6 * 3600, "MaximumRetryAttempts": 4},
                }
            ],
        },
    )
    default.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": getatt(lister),
            "Principal": "events.amazonaws.com",
        },
    )
    # EventBridge may write to the DLQ only on behalf of this rule
    rule = default.logical_id("ScheduleRule", "AWS::Events::Rule")
    default.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": dlq}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sqs:SendMessage",
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Condition": {"ArnEquals": {"aws:SourceArn": getatt(rule)}},
                            }
                        )
                    ]
                )
            },
        },
    )


# Monitoring ----------------------------------------------------------------------------------------


def test_alarm_topic_is_encrypted_and_tls_only(default: Synth) -> None:
    key = default.logical_id("MonitoringAlarmTopicKey", "AWS::KMS::Key")
    topic = default.logical_id("MonitoringAlarmTopic", "AWS::SNS::Topic")
    default.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": getatt(key)})
    default.template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                            }
                        )
                    ]
                )
            },
        },
    )
    default.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )
    assert not default.resources("AWS::SNS::Subscription")


def _alarm(default: Synth, metric: str, namespace: str, dimensions: list[Any]) -> None:
    topic = default.logical_id("MonitoringAlarmTopic", "AWS::SNS::Topic")
    default.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": metric,
            "Namespace": namespace,
            "Dimensions": dimensions,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "EvaluationPeriods": 1,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": topic}],
        },
    )


@pytest.mark.parametrize("prefix", ["PipelineDeadLetterQueue", "ScheduleDeadLetterQueue"])
def test_alarm_when_a_dead_letter_queue_is_not_empty(default: Synth, prefix: str) -> None:
    queue = default.logical_id(prefix, "AWS::SQS::Queue")
    _alarm(
        default,
        "ApproximateNumberOfMessagesVisible",
        "AWS/SQS",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
    )


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
@pytest.mark.parametrize("handler", [LISTER_HANDLER, FETCHER_HANDLER])
def test_alarm_on_function_errors_and_throttles(default: Synth, handler: str, metric: str) -> None:
    fn, _ = function(default, handler)
    _alarm(default, metric, "AWS/Lambda", [{"Name": "FunctionName", "Value": {"Ref": fn}}])


def test_alarm_on_failed_invoices(default: Synth) -> None:
    _alarm(default, Metric.INVOICES_FAILED, METRICS_NAMESPACE, [{"Name": "service", "Value": SERVICE_NAME}])
    assert len(default.resources("AWS::CloudWatch::Alarm")) == 11


def test_alarm_when_a_message_names_a_source_that_is_not_configured(default: Synth) -> None:
    default.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": Metric.SOURCES_REFUSED,
            "Namespace": METRICS_NAMESPACE,
            "Statistic": "Sum",
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    )


def test_alarm_when_an_invoice_stays_unsettled_longer_than_the_setting(default: Synth) -> None:
    # The lister counts InvoicesUnsettled once per scheduled run: a day-long period, as AccountsWithoutInvoice
    default.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": Metric.INVOICES_UNSETTLED,
            "Namespace": METRICS_NAMESPACE,
            "Dimensions": [{"Name": "service", "Value": SERVICE_NAME}],
            "Statistic": "Maximum",
            "Period": 86400,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmDescription": Match.string_like_regexp(" 3 days after it was first claimed"),
            "AlarmActions": Match.any_value(),
        },
    )
    lister = function(default, LISTER_HANDLER)[1]["Properties"]["Environment"]["Variables"]
    assert lister["UNSETTLED_AFTER_DAYS"] == "3"


def test_alarm_when_a_source_cannot_be_read(default: Synth) -> None:
    default.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": Metric.SOURCES_FAILED,
            "Namespace": METRICS_NAMESPACE,
            "Dimensions": [{"Name": "service", "Value": SERVICE_NAME}],
            "Statistic": "Maximum",
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        },
    )


def test_alarm_when_an_account_has_no_invoice_for_last_month_by_the_configured_day(default: Synth) -> None:
    # The lister emits AccountsWithoutInvoice once a day from MISSING_INVOICE_DAY; a day-long period
    default.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": Metric.ACCOUNTS_WITHOUT_INVOICE,
            "Namespace": METRICS_NAMESPACE,
            "Dimensions": [{"Name": "service", "Value": SERVICE_NAME}],
            "Statistic": "Maximum",
            "Period": 86400,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmDescription": Match.string_like_regexp("by day 10 of the month"),
        },
    )


def test_dashboard_shows_the_pipeline_metrics(default: Synth) -> None:
    _, dashboard = default.only("AWS::CloudWatch::Dashboard")
    body = str(dashboard["Properties"]["DashboardBody"])
    for name in (
        Metric.INVOICES_LISTED,
        Metric.INVOICES_ARCHIVED,
        Metric.INVOICES_FAILED,
        Metric.DOCUMENTS_ARCHIVED,
        Metric.BYTES_ARCHIVED,
        "ApproximateAgeOfOldestMessage",
    ):
        assert name in body


def test_outputs_use_the_constant_keys(default: Synth, synth_with: Any) -> None:
    keys = {value for key, value in vars(OutputKey).items() if not key.startswith("_")}
    # The reconciler, and its output, exist only with cost_data_export set
    assert set(default.template.find_outputs("*")) == keys - {OutputKey.RECONCILER_FUNCTION}
    reconciling = synth_with({"cost_data_export": "s3://cost-exports/cur2/"})
    assert set(reconciling.template.find_outputs("*")) == keys


def test_tracing_can_be_turned_off_and_then_nothing_of_x_ray_is_granted(synth_with: Any) -> None:
    # Given tracing_enabled false
    untraced = synth_with({"tracing_enabled": False})
    # Then neither function traces, and no policy mentions X-Ray
    for _, resource in untraced.resources("AWS::Lambda::Function").items():
        assert "TracingConfig" not in resource["Properties"]
        # and Powertools' Tracer is told, so the X-Ray SDK is never imported at cold start
        assert resource["Properties"]["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true"
    for resource in untraced.resources("AWS::IAM::Policy").values():
        assert "xray" not in str(resource["Properties"]["PolicyDocument"])
