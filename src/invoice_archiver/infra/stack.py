"""The invoice-archiver stack: it only wires the constructs together and declares the outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from invoice_archiver.constants import SERVICE_NAME
from invoice_archiver.infra.constants import Id, OutputKey
from invoice_archiver.infra.encryption import Encryption
from invoice_archiver.infra.monitoring import Monitoring
from invoice_archiver.infra.pipeline import Pipeline
from invoice_archiver.infra.reconciliation import Reconciliation
from invoice_archiver.infra.schedule import Schedule
from invoice_archiver.infra.settings import DeploySettings
from invoice_archiver.infra.storage import Storage


class InvoiceArchiverStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="invoice-archiver: AWS invoices archived to S3, with a DynamoDB ledger",
            **kwargs,
        )
        Tags.of(self).add("service", SERVICE_NAME)

        encryption = Encryption(self, Id.ENCRYPTION, enabled=settings.kms_enabled)
        storage = Storage(self, Id.STORAGE, settings=settings, key=encryption.key)
        pipeline = Pipeline(self, Id.PIPELINE, settings=settings, storage=storage, key=encryption.key)
        schedule = Schedule(self, Id.SCHEDULE, settings=settings, lister=pipeline.lister)
        monitoring = Monitoring(
            self, Id.MONITORING, settings=settings, pipeline=pipeline, schedule=schedule, key=encryption.key
        )

        outputs = {
            OutputKey.ARCHIVE_BUCKET: storage.archive_bucket.bucket_name,
            OutputKey.ACCESS_LOG_BUCKET: storage.access_log_bucket.bucket_name,
            OutputKey.LEDGER_TABLE: storage.ledger_table.table_name,
            OutputKey.INVOICE_QUEUE: pipeline.invoice_queue.queue_url,
            OutputKey.DEAD_LETTER_QUEUE: pipeline.dead_letter_queue.queue_url,
            OutputKey.SCHEDULE_DEAD_LETTER_QUEUE: schedule.dead_letter_queue.queue_url,
            OutputKey.LISTER_FUNCTION: pipeline.lister.function_name,
            OutputKey.FETCHER_FUNCTION: pipeline.fetcher.function_name,
            OutputKey.ALARM_TOPIC: monitoring.topic.topic_arn,
            OutputKey.DASHBOARD: monitoring.dashboard.dashboard_name,
        }
        if settings.reconciliation_enabled:  # the cost data export is named: reconcile with it monthly
            reconciliation = Reconciliation(
                self,
                Id.RECONCILIATION,
                settings=settings,
                storage=storage,
                layers=pipeline.layers,
                topic=monitoring.topic,
                key=encryption.key,
            )
            outputs[OutputKey.RECONCILER_FUNCTION] = reconciliation.function.function_name
        for key, value in outputs.items():
            CfnOutput(self, key, value=value).override_logical_id(key)
