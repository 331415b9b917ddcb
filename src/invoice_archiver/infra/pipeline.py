"""The pipeline: invoice queue + DLQ, the lister and fetcher functions, their roles, logs and event source.

IAM choice: explicit statements in one inline policy per function (`<Fn>Permissions`), each with a Sid,
rather than `grant_*` helpers, whose action lists are wider than what the functions call (see
docs/decisions.md). The only permissions CDK adds by itself, into the role's DefaultPolicy, are
the SQS event source's consume permissions and X-Ray's PutTraceSegments/PutTelemetryRecords.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from invoice_archiver.config import Function
from invoice_archiver.constants import FETCHER_HANDLER, LISTER_HANDLER, UNSETTLED_INDEX
from invoice_archiver.infra import checkov
from invoice_archiver.infra.constants import (
    DLQ_RETENTION_DAYS,
    FUNCTIONS_ASSET_DIR,
    FUNCTIONS_ASSET_EXCLUDE,
    INVOICE_QUEUE_RETENTION_DAYS,
    LAMBDA_TMP_DIR,
    POWERTOOLS_LAYER_ARN_FORMAT,
    PYTHON_RUNTIME,
)
from invoice_archiver.infra.environment import function_environment
from invoice_archiver.infra.nag import acknowledge, arn_finding
from invoice_archiver.infra.sdk_layer import SdkLayer
from invoice_archiver.infra.settings import DeploySettings
from invoice_archiver.infra.storage import Storage

_REPO_ROOT = Path(__file__).resolve().parents[3]

# Service Authorization Reference, "AWS Invoicing Service": ListInvoiceSummaries and GetInvoicePDF have
# no resource types (Resource must be "*"), and each operation is also authorized against
# aws-portal:ViewBilling, which has no resource types either.
INVOICING_WILDCARD_REASON = (
    "invoicing:ListInvoiceSummaries, invoicing:GetInvoicePDF and aws-portal:ViewBilling (which the "
    "Invoicing operations also authorize, per the Service Authorization Reference) support no "
    "resource-level permissions: the Resource element must be '*'. Read-only billing actions."
)
XRAY_WILDCARD_REASON = (
    "xray:PutTraceSegments and xray:PutTelemetryRecords (added by CDK for active tracing) support no "
    "resource-level permissions."
)
LOG_STREAM_WILDCARD_REASON = (
    "Scoped to the function's own log group; ':*' covers its log streams, whose names Lambda generates."
)


def powertools_layer_arn(*, partition: str, region: str, python_runtime: str, version: int) -> str:
    """ARN of the Powertools V3 arm64 layer AWS publishes for this region and Python version."""
    return POWERTOOLS_LAYER_ARN_FORMAT.format(
        partition=partition,
        region=region,
        python_version=python_runtime.replace(".", ""),
        version=version,
    )


class Pipeline(Construct):
    """Lister -> invoice queue -> fetcher -> S3 + ledger, with the DLQ the fetcher and SQS both use."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        storage: Storage,
        key: kms.IKey | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._settings = settings
        self._key = key

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS if key else sqs.QueueEncryption.SQS_MANAGED,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
        )
        self.invoice_queue = self._work_queue("InvoiceQueue", settings.visibility_timeout_seconds)
        # A listing that outgrows one invocation continues here; the lister consumes it.
        self.listing_queue = self._work_queue("ListingQueue", settings.listing_visibility_timeout_seconds)
        if key is None:
            checkov.skip(self.dead_letter_queue, checkov.QUEUE_SQS_MANAGED_SSE)
            checkov.skip(self.invoice_queue, checkov.QUEUE_SQS_MANAGED_SSE)
            checkov.skip(self.listing_queue, checkov.QUEUE_SQS_MANAGED_SSE)

        runtime = lambda_.Runtime.PYTHON_3_14
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            powertools_layer_arn(
                partition=stack.partition,
                region=stack.region,
                python_runtime=PYTHON_RUNTIME,
                version=settings.powertools_layer_version,
            ),
        )
        sdk = SdkLayer(
            self,
            "SdkLayer",
            runtime=runtime,
            architecture=lambda_.Architecture.ARM_64,
            python_version=PYTHON_RUNTIME.removeprefix("python"),
        )
        # Lambda extracts layers into /opt in this order (a later one wins a clash; these two share no
        # file) and imports from them before the runtime's own packages: our boto3, not the runtime's.
        layers = [powertools, sdk.layer]
        self.layers: list[lambda_.ILayerVersion] = layers  # the reconciler adds its own after these
        code = lambda_.Code.from_asset(
            str(_REPO_ROOT / FUNCTIONS_ASSET_DIR), exclude=list(FUNCTIONS_ASSET_EXCLUDE)
        )

        own = not settings.source_role_arns  # no sources: archive the stack's own account by default
        values = {
            **settings.function_values(),
            "archive_bucket": storage.archive_bucket.bucket_name,
            "ledger_table": storage.ledger_table.table_name,
            "invoice_queue_url": self.invoice_queue.queue_url,
            "listing_queue_url": self.listing_queue.queue_url,
            "dead_letter_queue_url": self.dead_letter_queue.queue_url,
            # Default: the account the stack is deployed in; with sources configured, only those.
            "account_ids": ",".join(settings.account_ids) or (stack.account if own else ""),
            "invoicing_region": "us-east-1",
            "spool_directory": LAMBDA_TMP_DIR,
        }

        self.lister = self._function(
            "Lister",
            function="lister",
            handler=LISTER_HANDLER,
            description="Lists AWS invoices and queues one message per invoice",
            timeout=settings.lister_timeout_seconds,
            memory=settings.lister_memory_mb,
            ephemeral_mib=512,
            runtime=runtime,
            layers=layers,
            code=code,
            # The lister is the only caller of ListInvoiceSummaries: the account's whole limit is its own.
            environment=function_environment(
                "lister",
                {**values, "invoicing_rate_limit": f"{settings.invoicing_calls_per_second:g}"},
                log_level=settings.log_level,
                tracing=settings.tracing_enabled,
            ),
        )
        self.fetcher = self._function(
            "Fetcher",
            function="fetcher",
            handler=FETCHER_HANDLER,
            description="Downloads each invoice's documents into the archive bucket and records them",
            timeout=settings.fetcher_timeout_seconds,
            memory=settings.fetcher_memory_mb,
            ephemeral_mib=settings.fetcher_ephemeral_storage_mib,
            runtime=runtime,
            layers=layers,
            code=code,
            environment=function_environment(
                "fetcher", values, log_level=settings.log_level, tracing=settings.tracing_enabled
            ),
        )

        self._grant_lister(storage)
        self._grant_fetcher(storage)
        # Only the lister may put a message on the queues a function consumes: a message the lister did
        # not write never reaches the fetcher (or a later piece of a listing), whoever else in the account
        # is allowed sqs:SendMessage.
        for queue in (self.invoice_queue, self.listing_queue):
            self._only_the_lister_sends(queue)

        # Adds the consume permissions (ReceiveMessage, DeleteMessage, ChangeMessageVisibility,
        # GetQueueAttributes, GetQueueUrl; kms:Decrypt with a CMK) to the fetcher's DefaultPolicy.
        self.fetcher.add_event_source(
            sources.SqsEventSource(
                self.invoice_queue,
                batch_size=settings.fetcher_batch_size,
                max_batching_window=Duration.seconds(settings.fetcher_batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=settings.fetcher_max_concurrency,
            )
        )
        # Continuations: one at a time per listing (batch size 1); Lambda's minimum concurrency is 2.
        self.lister.add_event_source(
            sources.SqsEventSource(self.listing_queue, batch_size=1, max_concurrency=2)
        )

    def _work_queue(self, construct_id: str, visibility_seconds: int) -> sqs.Queue:
        """A queue a function consumes: encrypted, TLS only, redriven to the DLQ after max_receive_count."""
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.KMS if self._key else sqs.QueueEncryption.SQS_MANAGED,
            encryption_master_key=self._key,
            enforce_ssl=True,
            retention_period=Duration.days(INVOICE_QUEUE_RETENTION_DAYS),
            visibility_timeout=Duration.seconds(visibility_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=self._settings.max_receive_count
            ),
            # No other queue may name this one as its dead-letter queue (the default lets any queue of
            # the account do so): SQS would move that queue's messages in, past the queue policy that
            # admits only the lister's SendMessage.
            redrive_allow_policy=sqs.RedriveAllowPolicy(redrive_permission=sqs.RedrivePermission.DENY_ALL),
        )

    def _only_the_lister_sends(self, queue: sqs.Queue) -> None:
        assert self.lister.role is not None
        queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheListerSends",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sqs:SendMessage"],
                resources=[queue.queue_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": self.lister.role.role_arn}},
            )
        )

    # Functions -----------------------------------------------------------------------------------

    def _function(
        self,
        construct_id: str,
        *,
        function: Function,
        handler: str,
        description: str,
        timeout: int,
        memory: int,
        ephemeral_mib: int,
        runtime: lambda_.Runtime,
        layers: list[lambda_.ILayerVersion],
        code: lambda_.Code,
        environment: dict[str, str],
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{construct_id}LogGroup",
            retention=_retention(self._settings.log_retention_days),
            encryption_key=self._key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{construct_id}Role",
            role_name=self._settings.role_name(function),
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"invoice-archiver {function}: least privilege, no managed policies",
        )
        fn = lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=runtime,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=code,
            layers=layers,
            timeout=Duration.seconds(timeout),
            memory_size=memory,
            ephemeral_storage_size=Size.mebibytes(ephemeral_mib),
            environment=environment,
            environment_encryption=self._key,
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE if self._settings.tracing_enabled else lambda_.Tracing.DISABLED,
        )
        cfn_function = fn.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        # CDK lists the role in DependsOn although Fn::GetAtt already orders it: cfn-lint W3005, harmless.
        cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        checkov.skip(fn, checkov.FUNCTION_DLQ[function], checkov.NO_VPC, checkov.NO_RESERVED_CONCURRENCY)
        if self._key is None:
            checkov.skip(fn, checkov.ENVIRONMENT_AWS_MANAGED_KEY)
            checkov.skip(log_group, checkov.LOG_GROUP_SERVICE_KEY)
        self._add_statements(
            fn,
            function,
            [
                iam.PolicyStatement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[f"{log_group.log_group_arn}:*"],
                )
            ],
        )
        if self._settings.tracing_enabled:
            # X-Ray's statement is in the role's DefaultPolicy (CDK adds it for active tracing).
            acknowledge(role, "AwsSolutions-IAM5", XRAY_WILDCARD_REASON, findings=("Resource::*",))
        acknowledge(
            self._policy(function),
            "AwsSolutions-IAM5",
            LOG_STREAM_WILDCARD_REASON,
            findings=(arn_finding(log_group, ":*"),),
        )
        return fn

    def _add_statements(
        self, fn: lambda_.Function, function: Function, statements: list[iam.PolicyStatement]
    ) -> None:
        """Add statements to the function's explicit inline policy (created on first use)."""
        policy = self.node.try_find_child(_policy_id(function))
        if policy is None:
            assert fn.role is not None
            policy = iam.Policy(
                self,
                _policy_id(function),
                roles=[fn.role],
                document=iam.PolicyDocument(minimize=False),
            )
            # The function must not run before its permissions exist.
            fn.node.add_dependency(policy)
        assert isinstance(policy, iam.Policy)
        policy.add_statements(*statements)

    def _policy(self, function: Function) -> iam.Policy:
        policy = self.node.find_child(_policy_id(function))
        assert isinstance(policy, iam.Policy)
        return policy

    # Permissions ---------------------------------------------------------------------------------

    def _grant_lister(self, storage: Storage) -> None:
        statements = [
            iam.PolicyStatement(
                sid="ListInvoices",
                actions=[
                    "invoicing:ListInvoiceSummaries",
                    # Invoice-unit discovery with the function's own credentials (ACCOUNT_IDS sources).
                    *(["invoicing:ListInvoiceUnits"] if self._discovers_with_own_credentials else []),
                    "aws-portal:ViewBilling",
                ],
                resources=["*"],  # no resource-level permissions: see INVOICING_WILDCARD_REASON
            ),
            iam.PolicyStatement(
                sid="SendToInvoiceQueue",
                actions=["sqs:SendMessage"],
                resources=[self.invoice_queue.queue_arn],
            ),
            iam.PolicyStatement(
                # A listing that nears the end of its invocation continues through this queue.
                sid="ContinueListing",
                actions=["sqs:SendMessage"],
                resources=[self.listing_queue.queue_arn],
            ),
            iam.PolicyStatement(
                # A summary that cannot become a message goes to the DLQ with its reason.
                sid="QuarantineToDeadLetterQueue",
                actions=["sqs:SendMessage"],
                resources=[self.dead_letter_queue.queue_arn],
            ),
            iam.PolicyStatement(
                # One Query per account and billing period: what is archived, and as what; and one per
                # account on the index of unsettled invoices, re-queued whatever their period.
                sid="ReadLedger",
                actions=["dynamodb:Query"],
                resources=[
                    storage.ledger_table.table_arn,
                    f"{storage.ledger_table.table_arn}/index/{UNSETTLED_INDEX}",
                ],
            ),
            iam.PolicyStatement(
                # A source's own record: FAILED with its reason, cleared once it lists cleanly again.
                sid="RecordSourceStatus",
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[storage.ledger_table.table_arn],
            ),
        ]
        if self._key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="UseArchiveKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[self._key.key_arn],
                )
            )
        statements.extend(self._assume_source_roles())
        self._add_statements(self.lister, "lister", self._without_unused_invoicing(statements))
        acknowledge(
            self._policy("lister"), "AwsSolutions-IAM5", INVOICING_WILDCARD_REASON, findings=("Resource::*",)
        )

    def _grant_fetcher(self, storage: Storage) -> None:
        bucket = storage.archive_bucket
        prefix = self._settings.archive_prefix
        statements = [
            iam.PolicyStatement(
                # ListInvoiceSummaries confirms each invoice before anything is archived (the evidence
                # rule); ListInvoiceUnits checks a discovered receiver a message names.
                sid="ReadInvoices",
                actions=[
                    "invoicing:ListInvoiceSummaries",
                    "invoicing:GetInvoicePDF",
                    *(["invoicing:ListInvoiceUnits"] if self._discovers_with_own_credentials else []),
                    "aws-portal:ViewBilling",
                ],
                resources=["*"],  # no resource-level permissions: see INVOICING_WILDCARD_REASON
            ),
            iam.PolicyStatement(
                sid="WriteArchivePrefix",
                # PutObject also covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload;
                # GetObject covers HeadObject (used to resume a crashed attempt).
                actions=["s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(f"{prefix}/*")],
            ),
            iam.PolicyStatement(
                sid="ListArchiveBucket",
                # Without it, HeadObject on a key that does not exist yet answers 403 instead of 404.
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="ReadWriteLedger",
                # Conditional updates (claims, releases, records) and a consistent read of one item.
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[storage.ledger_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="QuarantineToDeadLetterQueue",
                actions=["sqs:SendMessage"],
                resources=[self.dead_letter_queue.queue_arn],
            ),
            iam.PolicyStatement(
                # Invoice Archived / Invoice Revised, on the configured bus only.
                sid="PublishInvoiceEvents",
                actions=["events:PutEvents"],
                resources=[self._event_bus_arn()],
            ),
        ]
        if self._key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="UseArchiveKey",
                    # SSE-KMS objects and queue messages: a data key to write, Decrypt to read (and for
                    # each multipart step); nothing else (tests/iam replays every call against this).
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[self._key.key_arn],
                )
            )
        statements.extend(self._assume_source_roles())
        # No sts:GetCallerIdentity: the fetcher asks it only when neither ACCOUNT_IDS nor source roles
        # are configured, and the stack always sets one of them (ACCOUNT_IDS is the stack's own account
        # when no role is); STS answers GetCallerIdentity without any permission anyway.
        self._add_statements(self.fetcher, "fetcher", self._without_unused_invoicing(statements))
        policy = self._policy("fetcher")
        acknowledge(policy, "AwsSolutions-IAM5", INVOICING_WILDCARD_REASON, findings=("Resource::*",))
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            f"The fetcher writes and reads only objects under the archive prefix '{prefix}/'; the keys "
            "below it (account/period/invoice) are only known at run time.",
            findings=(arn_finding(bucket, f"/{prefix}/*"),),
        )

    @property
    def _discovers_with_own_credentials(self) -> bool:
        """Invoice units are discovered with the functions' own credentials only for the accounts read
        with them (account_ids, or the stack's own account when no source role is configured); a
        source read through a role discovers through that role, whose policy grants it."""
        settings = self._settings
        return settings.discover_invoice_units and settings.reads_with_own_credentials

    def _without_unused_invoicing(self, statements: list[iam.PolicyStatement]) -> list[iam.PolicyStatement]:
        """With every source behind a role (sources, no account_ids), the functions' own credentials never
        call the Invoicing API: leave out the statements that would let them (the payer roles grant it)."""
        if self._settings.reads_with_own_credentials:
            return statements
        billing = ("invoicing:", "aws-portal:")
        return [s for s in statements if not any(a.startswith(billing) for a in s.actions)]

    def _assume_source_roles(self) -> list[iam.PolicyStatement]:
        """sts:AssumeRole on exactly the configured source roles; no statement when there are none."""
        arns = self._settings.assumable_role_arns
        if not arns:
            return []
        return [
            iam.PolicyStatement(sid="AssumeSourceRoles", actions=["sts:AssumeRole"], resources=list(arns))
        ]

    def _event_bus_arn(self) -> str:
        name = self._settings.event_bus_name
        if name.startswith("arn:"):
            return name
        stack = Stack.of(self)
        return stack.format_arn(service="events", resource="event-bus", resource_name=name)


def _policy_id(function: Function) -> str:
    return f"{function.capitalize()}Permissions"


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs retention for a number of days (DeploySettings only allows valid ones)."""
    return _RETENTION[days]
