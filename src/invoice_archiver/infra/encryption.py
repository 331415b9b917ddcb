"""The optional customer-managed KMS key (context `kms_enabled`)."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class Encryption(Construct):
    """One CMK, with yearly rotation, for the archive bucket, the ledger, the queues, the alarm topic, and
    the functions' log groups and environment variables.

    Without it (the default), each service encrypts with its own managed key; the alarm topic then gets
    a small key of its own (see Monitoring), because CloudWatch cannot publish to a topic encrypted with
    the AWS-managed aws/sns key.
    """

    def __init__(self, scope: Construct, construct_id: str, *, enabled: bool) -> None:
        super().__init__(scope, construct_id)
        self.key: kms.IKey | None = None
        if enabled:
            key = kms.Key(
                self,
                "Key",
                description=(
                    "invoice-archiver: archive bucket, ledger table, queues, alarm topic, function logs "
                    "and environment"
                ),
                enable_key_rotation=True,
                rotation_period=Duration.days(365),
                # The archive and the ledger outlive the stack; so must the key that decrypts them.
                removal_policy=RemovalPolicy.RETAIN,
            )
            allow_cloudwatch_alarms(key)
            allow_cloudwatch_logs(key)
            self.key = key


def allow_cloudwatch_alarms(key: kms.Key) -> None:
    """CloudWatch alarms publish to the encrypted alarm topic; the key policy must let them."""
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarmsToPublishToTheAlarmTopic",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],  # in a key policy, "*" means this key
        )
    )


def allow_cloudwatch_logs(key: kms.Key) -> None:
    """CloudWatch Logs encrypts the functions' log groups with the key; only for this account's log groups."""
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsToEncryptThisAccountsLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],  # in a key policy, "*" means this key
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
