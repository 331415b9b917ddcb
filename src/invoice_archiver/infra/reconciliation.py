"""The monthly reconciliation with the cost data: the reconciler function, its role, layer, schedule and
alarms. Only in the stack when `cost_data_export` names a Data Exports export (docs/reconciliation.md).

The function has its own code asset (src/ with the reconciler's modules, infra.constants.RECONCILER_MODULES,
which the lister's and fetcher's asset leaves out) and its own layer, pyarrow (infra.columnar_layer), after
the two layers every function has: the lister and fetcher packages stay as they were.

Least privilege, one inline policy (`ReconcilerPermissions`): read the export's prefix only (GetObject on
it, ListBucket with an s3:prefix condition), read the archive prefix (the latest summaries), Query the
ledger, and create objects only under reconciliation/ (which the bucket policy keeps create-only too).
"""

from __future__ import annotations

import re

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from invoice_archiver.constants import RECONCILER_HANDLER, Metric
from invoice_archiver.dal.reconciliation_results import PREFIX as RESULTS_PREFIX
from invoice_archiver.infra import checkov
from invoice_archiver.infra.archiver_function import XRAY_WILDCARD_REASON
from invoice_archiver.infra.columnar_layer import ColumnarLayer
from invoice_archiver.infra.constants import (
    DLQ_RETENTION_DAYS,
    FUNCTIONS_ASSET_DIR,
    FUNCTIONS_ASSET_EXCLUDE,
    PYTHON_RUNTIME,
    RECONCILER_MODULES,
)
from invoice_archiver.infra.dashboard import alarm_above_zero, invoice_metric
from invoice_archiver.infra.environment import function_environment
from invoice_archiver.infra.log_retention import retention
from invoice_archiver.infra.nag import acknowledge, arn_finding
from invoice_archiver.infra.permissions import reconciler_statements
from invoice_archiver.infra.pipeline import REPO_ROOT
from invoice_archiver.infra.settings import DeploySettings
from invoice_archiver.infra.storage import Storage

MEMORY_MB = 1024  # pyarrow and one 64k-line batch of the needed columns, with room to spare
TIMEOUT_SECONDS = 900
_S3 = re.compile(r"^s3://(?P<bucket>[^/]+)/?(?P<prefix>.*)$")


def _shown_partition(scope: Construct) -> str:
    """The partition as cdk-nag prints it in a finding: a literal when CDK knows it, else the pseudo one."""
    stack = Stack.of(scope)
    resolved = stack.resolve(stack.partition)
    return resolved if isinstance(resolved, str) else "<AWS::Partition>"


def export_bucket_and_prefix(location: str) -> tuple[str, str]:
    match = _S3.match(location)
    assert match is not None, location  # DeploySettings validated it
    return match["bucket"], match["prefix"].strip("/")


class Reconciliation(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        storage: Storage,
        layers: list[lambda_.ILayerVersion],
        topic: sns.ITopic,
        key: kms.IKey | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings, self._key = settings, key
        runtime = lambda_.Runtime.PYTHON_3_14
        columnar = ColumnarLayer(
            self,
            "ColumnarLayer",
            runtime=runtime,
            architecture=lambda_.Architecture.ARM_64,
            python_version=PYTHON_RUNTIME.removeprefix("python"),
        )
        self.log_group = logs.LogGroup(
            self,
            "ReconcilerLogGroup",
            retention=retention(settings.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            "ReconcilerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="invoice-archiver reconciler: least privilege, no managed policies",
        )
        self.function = self._function(runtime, [*layers, columnar.layer], storage, role)
        self._acknowledge(role)
        self._grant(storage, role)
        self._create_only(storage)
        self.schedule = self._schedule()
        self.alarms = self._alarms(topic)

    def _function(
        self, runtime: lambda_.Runtime, layers: list[lambda_.ILayerVersion], storage: Storage, role: iam.Role
    ) -> lambda_.Function:
        settings, key = self._settings, self._key
        return lambda_.Function(
            self,
            "Reconciler",
            description="Reconciles the archive with the cost data (CUR 2.0 / FOCUS 1.2 export) once a month",
            runtime=runtime,
            architecture=lambda_.Architecture.ARM_64,
            handler=RECONCILER_HANDLER,
            code=lambda_.Code.from_asset(
                str(REPO_ROOT / FUNCTIONS_ASSET_DIR),
                exclude=[p for p in FUNCTIONS_ASSET_EXCLUDE if p not in RECONCILER_MODULES],
            ),
            layers=layers,
            timeout=Duration.seconds(TIMEOUT_SECONDS),
            memory_size=MEMORY_MB,
            ephemeral_storage_size=Size.mebibytes(512),
            environment=function_environment(
                "reconciler",
                self._values(storage),
                log_level=settings.log_level,
                tracing=settings.tracing_enabled,
            ),
            environment_encryption=key,
            role=role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE if settings.tracing_enabled else lambda_.Tracing.DISABLED,
        )

    def _acknowledge(self, role: iam.Role) -> None:
        settings, key = self._settings, self._key
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        checkov.skip(
            self.function,
            checkov.RECONCILER_NO_FUNCTION_DLQ,
            checkov.RECONCILER_NO_VPC,
            checkov.RECONCILER_NO_RESERVED_CONCURRENCY,
        )
        if key is None:
            checkov.skip(self.function, checkov.ENVIRONMENT_AWS_MANAGED_KEY)
            checkov.skip(self.log_group, checkov.LOG_GROUP_SERVICE_KEY)
        if settings.tracing_enabled:
            acknowledge(role, "AwsSolutions-IAM5", XRAY_WILDCARD_REASON, findings=("Resource::*",))

    def _values(self, storage: Storage) -> dict[str, str]:
        settings = self._settings
        own = not settings.source_role_arns
        return {
            "archive_bucket": storage.archive_bucket.bucket_name,
            "archive_prefix": settings.archive_prefix,
            "ledger_table": storage.ledger_table.table_name,
            "account_ids": ",".join(settings.account_ids) or (Stack.of(self).account if own else ""),
            "source_role_arns": ",".join(settings.source_role_arns),
            "cost_data_export": settings.cost_data_export,
            "reconciliation_tolerance": settings.reconciliation_tolerance,
        }

    def _grant(self, storage: Storage, role: iam.Role) -> None:
        bucket, prefix = storage.archive_bucket, self._settings.archive_prefix
        export_bucket, export_prefix = export_bucket_and_prefix(self._settings.cost_data_export)
        partition = Stack.of(self).partition
        export_arn = f"arn:{partition}:s3:::{export_bucket}"
        export_objects = f"{export_arn}/{export_prefix}/*" if export_prefix else f"{export_arn}/*"
        statements = reconciler_statements(
            self._settings,
            storage,
            log_group_arn=self.log_group.log_group_arn,
            export=(export_arn, export_objects),
            key=self._key,
        )
        policy = iam.Policy(
            self,
            "ReconcilerPermissions",
            roles=[role],
            document=iam.PolicyDocument(minimize=False, statements=statements),
        )
        self.function.node.add_dependency(policy)
        reasons = {
            arn_finding(self.log_group, ":*"): "Scoped to the function's own log group; ':*' covers its log "
            "streams, whose names Lambda generates.",
            arn_finding(
                bucket, f"/{prefix}/*"
            ): f"The reconciler reads the archived summaries under '{prefix}/'; "
            "the keys below it (account/period/invoice) are only known at run time.",
            arn_finding(bucket, f"/{RESULTS_PREFIX}/*"): "The reconciler creates its results under "
            f"'{RESULTS_PREFIX}/' only (create-only: the bucket policy denies any write there without "
            "If-None-Match); each key names the period and the run's time.",
            f"Resource::{export_objects.replace(partition, _shown_partition(self))}": "Read-only access to "
            "the cost data export's prefix (context cost_data_export); its file names are AWS's, known only "
            "at run time.",
        }
        for finding, reason in reasons.items():
            acknowledge(policy, "AwsSolutions-IAM5", reason, findings=(finding,))

    def _create_only(self, storage: Storage) -> None:
        """As for the archive prefix: a creating write under reconciliation/ without If-None-Match is denied,
        whoever sends it (UploadPart and CreateMultipartUpload create nothing and are exempt)."""
        bucket = storage.archive_bucket
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyOverwritingReconciliations",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{RESULTS_PREFIX}/*")],
                conditions={
                    "Null": {"s3:if-none-match": "true"},
                    "Bool": {"s3:ObjectCreationOperation": "true"},
                },
            )
        )

    def _schedule(self) -> events.Rule:
        dead_letters = sqs.Queue(
            self,
            "ScheduleDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
        )
        acknowledge(
            dead_letters,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: the DLQ of the reconciliation rule's Lambda target "
            "(an EventBridge target DLQ, which cdk-nag does not recognise as a redrive target).",
        )
        checkov.skip(dead_letters, checkov.SCHEDULE_DLQ_SQS_MANAGED_SSE)
        day = self._settings.cost_data_reconciliation_day
        return events.Rule(
            self,
            "Schedule",
            description=f"Reconciles the previous month with the cost data on day {day} (07:00 UTC)",
            schedule=events.Schedule.expression(f"cron(0 7 {day} * ? *)"),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=dead_letters,
                    max_event_age=Duration.hours(6),
                    retry_attempts=2,
                )
            ],
        )

    def _alarms(self, topic: sns.ITopic) -> list[cloudwatch.Alarm]:
        day = Duration.days(1)
        found = [
            (
                "InvoicesMissingFromArchive",
                invoice_metric(Metric.INVOICES_MISSING_FROM_ARCHIVE, period=day, statistic="Maximum"),
                "an invoice in the cost data is not archived (see reconciliation/ in the archive bucket)",
            ),
            ("ReconcilerErrors", self.function.metric_errors(period=day), "the reconciliation failed"),
        ]
        alarms = []
        for construct_id, metric, description in found:
            alarm = alarm_above_zero(self, construct_id, metric, description)
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarms.append(alarm)
        return alarms
