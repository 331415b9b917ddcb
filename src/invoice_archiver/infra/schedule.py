"""The schedule: an EventBridge rule that invokes the lister, with retries and a DLQ of its own."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from invoice_archiver.infra import checkov
from invoice_archiver.infra.constants import DLQ_RETENTION_DAYS
from invoice_archiver.infra.nag import acknowledge
from invoice_archiver.infra.settings import DeploySettings


class Schedule(Construct):
    """Runs the lister on a cron in UTC (default daily at 06:00: an incremental run that enqueues only
    what is new, changed or due, so a day without news costs one ledger Query per account and period).

    Invocations EventBridge cannot deliver after its retries land in `dead_letter_queue`. That queue
    uses SQS-managed encryption even when a CMK is configured: EventBridge would otherwise need the
    key, and the message holds only the scheduled event (no invoice data).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, lister: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: the DLQ of the EventBridge rule's Lambda target "
            "(an EventBridge target DLQ, which cdk-nag does not recognise as a redrive target).",
        )
        checkov.skip(self.dead_letter_queue, checkov.SCHEDULE_DLQ_SQS_MANAGED_SSE)
        self.rule = events.Rule(
            self,
            "Rule",
            description="Starts the invoice-archiver lister (cron in UTC)",
            schedule=events.Schedule.expression(settings.schedule_expression),
            enabled=settings.schedule_enabled,
            targets=[
                targets.LambdaFunction(
                    lister,
                    dead_letter_queue=self.dead_letter_queue,
                    max_event_age=Duration.hours(settings.schedule_max_event_age_hours),
                    retry_attempts=settings.schedule_retry_attempts,
                )
            ],
        )
