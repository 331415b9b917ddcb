"""The archive: the S3 bucket that holds the invoices, its access-log bucket, and the DynamoDB ledger."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from invoice_archiver.constants import (
    LEDGER_PARTITION_KEY,
    LEDGER_SORT_KEY,
    UNSETTLED_INDEX,
    UNSETTLED_PROJECTED,
    UNSETTLED_SINCE,
)
from invoice_archiver.infra import checkov
from invoice_archiver.infra.settings import DeploySettings

_STORAGE_CLASSES = {
    "GLACIER_INSTANT_RETRIEVAL": s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
    "GLACIER": s3.StorageClass.GLACIER,
    "DEEP_ARCHIVE": s3.StorageClass.DEEP_ARCHIVE,
}
# An overwritten or deleted access log stays recoverable this long.
_ACCESS_LOG_NONCURRENT_DAYS = 30

# What writes into the bucket as a replica (s3:PutObject's create-only deny does not see these).
REPLICATION_ACTIONS = ("s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags")
# What removes, hides, unlocks or rewrites an archived object (or one of its versions) after it was
# created: the functions' roles may do none of it.
REWRITE_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
    "s3:PutObjectVersionTagging",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:BypassGovernanceRetention",
)


class Storage(Construct):
    """Archive bucket (+ its access-log bucket) and the ledger table; all three outlive the stack."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, key: kms.IKey | None
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_log_bucket = self._access_log_bucket(settings)
        self.archive_bucket = self._archive_bucket(settings, key)
        self.ledger_table = self._ledger_table(key)

    def _access_log_bucket(self, settings: DeploySettings) -> s3.Bucket:
        # A bucket with Object Lock cannot be a server-access-log target, and log delivery supports
        # SSE-S3 only: so the logs go to a plain, separate bucket. Versioned, so that an overwritten or
        # deleted log can be recovered; expired logs' old versions and delete markers are cleaned up.
        bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(settings.access_log_retention_days),
                    noncurrent_version_expiration=Duration.days(_ACCESS_LOG_NONCURRENT_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
                s3.LifecycleRule(id="RemoveExpiredDeleteMarkers", expired_object_delete_marker=True),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        # cdk-nag's S1 accepts a bucket that is itself a server-access-log target: no acknowledgment.
        checkov.skip(bucket, checkov.ACCESS_LOG_BUCKET_NOT_LOGGED)
        return bucket

    def _archive_bucket(self, settings: DeploySettings, key: kms.IKey | None) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "ArchiveBucket",
            encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=key,
            bucket_key_enabled=key is not None,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            object_lock_enabled=settings.object_lock_enabled or None,
            lifecycle_rules=_lifecycle_rules(settings),
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="archive-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        cfn = bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        # Downstream consumers subscribe to ObjectCreated through EventBridge. This is what
        # `event_bridge_enabled=True` turns on, set on the bucket itself: the L2 prop would add a
        # custom-resource Lambda (AWSLambdaBasicExecutionRole, a CDK-chosen runtime) to do the same.
        cfn.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )
        self._create_only(bucket, settings.archive_prefix)
        self._append_only(bucket, settings)
        if settings.object_lock_enabled:
            # Invoices are legal records: COMPLIANCE mode, a retention in whole years (nobody, root
            # included, can shorten it or delete a locked version before it ends).
            cfn.object_lock_configuration = s3.CfnBucket.ObjectLockConfigurationProperty(
                object_lock_enabled="Enabled",
                rule=s3.CfnBucket.ObjectLockRuleProperty(
                    default_retention=s3.CfnBucket.DefaultRetentionProperty(
                        mode="COMPLIANCE", years=settings.object_lock_retention_years
                    )
                ),
            )
        return bucket

    @staticmethod
    def _create_only(bucket: s3.Bucket, prefix: str) -> None:
        """AWS, not only our client, refuses every write to the archive prefix that could overwrite.

        S3 authorizes PutObject, CreateMultipartUpload, UploadPart and CompleteMultipartUpload as
        s3:PutObject. Of these, PutObject and CompleteMultipartUpload create the object and accept
        If-None-Match (s3:ObjectCreationOperation is true for them); the other two accept no conditional
        header and create nothing (false), so they are exempt, as AWS documents for enforcing conditional
        writes. A creating request without If-None-Match (an overwrite, or an If-Match replace) is denied,
        whoever sends it; one with it can only create a key that does not exist."""
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyOverwritingTheArchive",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{prefix}/*")],
                conditions={
                    "Null": {"s3:if-none-match": "true"},
                    "Bool": {"s3:ObjectCreationOperation": "true"},
                },
            )
        )

    @staticmethod
    def _append_only(bucket: s3.Bucket, settings: DeploySettings) -> None:
        """No other path into the archive prefix replaces, hides or removes what is there.

        * Replication into the bucket writes as `s3:ReplicateObject` (and `ReplicateDelete`,
          `ReplicateTags`), not `s3:PutObject`: a replica lands on an existing key as a new version, so
          the create-only deny would not see it. Nothing replicates into the archive: denied to all.
        * The functions' roles never delete, hide, unlock or re-ACL an archive object or a version: none
          of their code does, and a later over-broad grant (a `grant_*`, a managed policy) must not make
          it possible. Their fixed names make the ARNs plain strings here, with no reference to the
          roles. Operators keep these (a delete marker is removed with DeleteObjectVersion, as `verify`
          advises; only Object Lock binds them). `s3:PutObjectTagging` is not in the list: S3 authorizes
          the tags a creating PutObject or CreateMultipartUpload carries with that action, and AWS
          documents no condition key that tells them from a later re-tag (docs/decisions.md)."""
        objects = bucket.arn_for_objects(f"{settings.archive_prefix}/*")
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyReplicationIntoTheArchive",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(REPLICATION_ACTIONS),
                resources=[objects],
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="FunctionsNeverRemoveOrRewrite",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(REWRITE_ACTIONS),
                resources=[objects],
                conditions={
                    "ArnEquals": {
                        "aws:PrincipalArn": [
                            f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{settings.role_name(function)}"
                            for function in ("lister", "fetcher")
                        ]
                    }
                },
            )
        )

    def _ledger_table(self, key: kms.IKey | None) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            "LedgerTable",
            partition_key=dynamodb.Attribute(name=LEDGER_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=LEDGER_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=(
                dynamodb.TableEncryption.CUSTOMER_MANAGED if key else dynamodb.TableEncryption.AWS_MANAGED
            ),
            encryption_key=key,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Sparse: only unsettled invoices hold `unsettled_since` (dal/ledger/unsettled.py); the lister
        # reads it.
        table.add_global_secondary_index(
            index_name=UNSETTLED_INDEX,
            partition_key=dynamodb.Attribute(name=LEDGER_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=UNSETTLED_SINCE, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(UNSETTLED_PROJECTED),
        )
        if key is None:
            checkov.skip(table, checkov.LEDGER_AWS_MANAGED_KEY)
        return table


def _lifecycle_rules(settings: DeploySettings) -> list[s3.LifecycleRule]:
    transitions = []
    if settings.lifecycle_infrequent_access_days:
        transitions.append(
            s3.Transition(
                storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                transition_after=Duration.days(settings.lifecycle_infrequent_access_days),
            )
        )
    if settings.lifecycle_archive_days:
        transitions.append(
            s3.Transition(
                storage_class=_STORAGE_CLASSES[settings.lifecycle_archive_storage_class],
                transition_after=Duration.days(settings.lifecycle_archive_days),
            )
        )
    # No rule ever expires a noncurrent version: a version that was replaced or hidden by a delete marker
    # is the evidence of what happened to the archive, and is kept as long as the bucket (an operator's
    # deliberate DeleteObjectVersion, where Object Lock allows it, is the only way one goes).
    return [
        s3.LifecycleRule(
            id="TierCurrentVersions",
            transitions=transitions or None,
            abort_incomplete_multipart_upload_after=Duration.days(
                settings.abort_incomplete_multipart_upload_days
            ),
        )
    ]
