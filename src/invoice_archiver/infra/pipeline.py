"""The pipeline: the queues, the lister and fetcher functions, their permissions and event sources.

Queues in queues.py, one function in archiver_function.py, what each may do in permissions.py; this
module puts them together (construct ids are the pipeline's, so the template's logical ids stay stable).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from invoice_archiver.constants import FETCHER_HANDLER, LISTER_HANDLER
from invoice_archiver.infra.archiver_function import (
    FunctionSpec,
    Package,
    add_statements,
    archiver_function,
    function_policy,
    powertools_layer_arn,
)
from invoice_archiver.infra.constants import (
    FUNCTIONS_ASSET_DIR,
    FUNCTIONS_ASSET_EXCLUDE,
    LAMBDA_TMP_DIR,
    PYTHON_RUNTIME,
)
from invoice_archiver.infra.environment import function_environment
from invoice_archiver.infra.nag import acknowledge, arn_finding
from invoice_archiver.infra.permissions import (
    INVOICING_WILDCARD_REASON,
    fetcher_statements,
    lister_statements,
)
from invoice_archiver.infra.queues import build_queues, only_the_lister_sends
from invoice_archiver.infra.sdk_layer import SdkLayer
from invoice_archiver.infra.settings import DeploySettings
from invoice_archiver.infra.storage import Storage

REPO_ROOT = Path(__file__).resolve().parents[3]


class Pipeline(Construct):
    """Lister -> invoice queue -> fetcher -> S3 + ledger, with the DLQ the functions and SQS both use."""

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
        self._settings = settings
        queues = build_queues(self, settings, key)
        self.dead_letter_queue, self.invoice_queue, self.listing_queue = (
            queues.dead_letter,
            queues.invoice,
            queues.listing,
        )
        self.package = self._package()
        self.layers = self.package.layers  # the reconciler adds its own after these
        values = self._values(storage)
        self.lister = archiver_function(self, self._lister_spec(values), self.package, settings, key)
        self.fetcher = archiver_function(self, self._fetcher_spec(values), self.package, settings, key)

        add_statements(self, self.lister, "lister", lister_statements(settings, storage, queues, key))
        acknowledge(
            function_policy(self, "lister"),
            "AwsSolutions-IAM5",
            INVOICING_WILDCARD_REASON,
            findings=("Resource::*",),
        )
        add_statements(
            self, self.fetcher, "fetcher", fetcher_statements(self, settings, storage, queues, key)
        )
        self._acknowledge_fetcher(storage)
        assert self.lister.role is not None
        for queue in (self.invoice_queue, self.listing_queue):
            only_the_lister_sends(queue, self.lister.role.role_arn)
        self._event_sources()

    def _package(self) -> Package:
        stack = Stack.of(self)
        runtime = lambda_.Runtime.PYTHON_3_14
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            powertools_layer_arn(
                partition=stack.partition,
                region=stack.region,
                python_runtime=PYTHON_RUNTIME,
                version=self._settings.powertools_layer_version,
            ),
        )
        sdk = SdkLayer(
            self,
            "SdkLayer",
            runtime=runtime,
            architecture=lambda_.Architecture.ARM_64,
            python_version=PYTHON_RUNTIME.removeprefix("python"),
        )
        code = lambda_.Code.from_asset(
            str(REPO_ROOT / FUNCTIONS_ASSET_DIR), exclude=list(FUNCTIONS_ASSET_EXCLUDE)
        )
        # Lambda extracts layers into /opt in this order (a later one wins a clash; these two share no
        # file) and imports from them before the runtime's own packages: our boto3, not the runtime's.
        return Package(runtime=runtime, code=code, layers=[powertools, sdk.layer])

    def _values(self, storage: Storage) -> dict[str, str]:
        """The settings both functions read, by field name."""
        settings = self._settings
        own = not settings.source_role_arns  # no sources: archive the stack's own account by default
        return {
            **settings.function_values(),
            "archive_bucket": storage.archive_bucket.bucket_name,
            "ledger_table": storage.ledger_table.table_name,
            "invoice_queue_url": self.invoice_queue.queue_url,
            "listing_queue_url": self.listing_queue.queue_url,
            "dead_letter_queue_url": self.dead_letter_queue.queue_url,
            # Default: the account the stack is deployed in; with sources configured, only those.
            "account_ids": ",".join(settings.account_ids) or (Stack.of(self).account if own else ""),
            "invoicing_region": "us-east-1",
            "spool_directory": LAMBDA_TMP_DIR,
        }

    def _lister_spec(self, values: dict[str, str]) -> FunctionSpec:
        settings = self._settings
        return FunctionSpec(
            construct_id="Lister",
            function="lister",
            handler=LISTER_HANDLER,
            description="Lists AWS invoices and queues one message per invoice",
            timeout=settings.lister_timeout_seconds,
            memory=settings.lister_memory_mb,
            ephemeral_mib=512,
            # The lister is the only caller of ListInvoiceSummaries: the account's whole limit is its own.
            environment=function_environment(
                "lister",
                {**values, "invoicing_rate_limit": f"{settings.invoicing_calls_per_second:g}"},
                log_level=settings.log_level,
                tracing=settings.tracing_enabled,
            ),
        )

    def _fetcher_spec(self, values: dict[str, str]) -> FunctionSpec:
        settings = self._settings
        return FunctionSpec(
            construct_id="Fetcher",
            function="fetcher",
            handler=FETCHER_HANDLER,
            description="Downloads each invoice's documents into the archive bucket and records them",
            timeout=settings.fetcher_timeout_seconds,
            memory=settings.fetcher_memory_mb,
            ephemeral_mib=settings.fetcher_ephemeral_storage_mib,
            environment=function_environment(
                "fetcher", values, log_level=settings.log_level, tracing=settings.tracing_enabled
            ),
        )

    def _acknowledge_fetcher(self, storage: Storage) -> None:
        policy = function_policy(self, "fetcher")
        prefix = self._settings.archive_prefix
        acknowledge(policy, "AwsSolutions-IAM5", INVOICING_WILDCARD_REASON, findings=("Resource::*",))
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            f"The fetcher writes and reads only objects under the archive prefix '{prefix}/'; the keys "
            "below it (account/period/invoice) are only known at run time.",
            findings=(arn_finding(storage.archive_bucket, f"/{prefix}/*"),),
        )

    def _event_sources(self) -> None:
        settings = self._settings
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
