"""Monitoring: alarms to an encrypted SNS topic (optional e-mail), and a dashboard of the pipeline."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from invoice_archiver.constants import Metric
from invoice_archiver.infra.dashboard import PERIOD, alarm_above_zero, build_dashboard, invoice_metric
from invoice_archiver.infra.encryption import allow_cloudwatch_alarms
from invoice_archiver.infra.pipeline import Pipeline
from invoice_archiver.infra.schedule import Schedule
from invoice_archiver.infra.settings import DeploySettings


class Monitoring(Construct):
    """Alarms on DLQ depth, function errors and throttles and failed invoices; one dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        pipeline: Pipeline,
        schedule: Schedule,
        key: kms.IKey | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="invoice-archiver alarms",
            master_key=key or self._topic_key(),
            enforce_ssl=True,
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))

        self.alarms = [*self._pipeline_alarms(pipeline, schedule), *self._invoice_alarms(settings)]
        action = actions.SnsAction(self.topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)

        self.dashboard = build_dashboard(self, pipeline, schedule, self.alarms)

    def _pipeline_alarms(self, pipeline: Pipeline, schedule: Schedule) -> list[cloudwatch.Alarm]:
        """The queues and the functions: messages given up on, a function failing or throttled."""
        return [
            self._dlq_alarm(
                "DeadLetterQueueNotEmpty",
                pipeline.dead_letter_queue,
                "Invoices the fetcher gave up on (or quarantined as malformed) are waiting",
            ),
            self._dlq_alarm(
                "ScheduleDeadLetterQueueNotEmpty",
                schedule.dead_letter_queue,
                "EventBridge could not invoke the lister after its retries",
            ),
            alarm_above_zero(
                self,
                "ListerErrors",
                pipeline.lister.metric_errors(period=PERIOD),
                "The lister failed (the scheduled run may be incomplete)",
            ),
            alarm_above_zero(
                self,
                "FetcherErrors",
                pipeline.fetcher.metric_errors(period=PERIOD),
                "The fetcher failed as a whole (not one invoice: see InvoicesFailed)",
            ),
            alarm_above_zero(
                self,
                "ListerThrottles",
                pipeline.lister.metric_throttles(period=PERIOD),
                "Lambda throttled the lister",
            ),
            alarm_above_zero(
                self,
                "FetcherThrottles",
                pipeline.fetcher.metric_throttles(period=PERIOD),
                "Lambda throttled the fetcher (account concurrency exhausted?)",
            ),
        ]

    def _invoice_alarms(self, settings: DeploySettings) -> list[cloudwatch.Alarm]:
        """What the functions count: invoices failed or unsettled, accounts without an invoice, sources."""
        return [
            alarm_above_zero(
                self,
                "InvoicesFailed",
                invoice_metric(Metric.INVOICES_FAILED),
                "At least one invoice could not be archived",
            ),
            # The lister counts it once a day from MISSING_INVOICE_DAY on; a day-long period keeps the
            # alarm in ALARM until the next run finds the invoice.
            alarm_above_zero(
                self,
                "AccountsWithoutInvoice",
                invoice_metric(Metric.ACCOUNTS_WITHOUT_INVOICE, period=Duration.days(1), statistic="Maximum"),
                f"A configured account has no invoice for the last complete billing period by day "
                f"{settings.missing_invoice_day} of the month",
            ),
            # Each scheduled run counts the invoices unsettled for longer than unsettled_after_days (and
            # re-queues them); a day-long period keeps the alarm in ALARM until a run finds them settled.
            alarm_above_zero(
                self,
                "InvoicesUnsettled",
                invoice_metric(Metric.INVOICES_UNSETTLED, period=Duration.days(1), statistic="Maximum"),
                f"An invoice is still not archived (or its event not sent) {settings.unsettled_after_days} "
                "days after it was first claimed; `invoice-archiver status` shows it and why",
            ),
            # Per run from the lister, per invoice from the fetcher: a role that cannot be assumed, or the
            # Invoicing API denying a source. The ledger's source record says which and why.
            alarm_above_zero(
                self,
                "SourcesFailed",
                invoice_metric(Metric.SOURCES_FAILED, period=Duration.hours(1), statistic="Maximum"),
                "A source (payer account or invoice-unit receiver) could not be read; "
                "`invoice-archiver status` names it and the reason",
            ),
            # A message, a listing continuation or a lister request named a source that is neither
            # configured nor discovered: a forgery, or a configuration changed under queued messages.
            alarm_above_zero(
                self,
                "SourcesRefused",
                invoice_metric(Metric.SOURCES_REFUSED, statistic="Sum"),
                "A message, listing continuation or lister request named a source that is not configured; "
                "it was refused unread (the DLQ holds it with ErrorType SourceRefused and the reason)",
            ),
        ]

    def _topic_key(self) -> kms.Key:
        # CloudWatch cannot publish to a topic encrypted with the AWS-managed aws/sns key, so without
        # the optional CMK the topic gets this small key of its own (alarm texts only).
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="invoice-archiver: alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        allow_cloudwatch_alarms(key)
        return key

    def _dlq_alarm(self, construct_id: str, queue: sqs.IQueue, description: str) -> cloudwatch.Alarm:
        metric = queue.metric_approximate_number_of_messages_visible(
            period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM
        )
        return alarm_above_zero(self, construct_id, metric, description)
