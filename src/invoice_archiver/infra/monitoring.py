"""Monitoring: alarms to an encrypted SNS topic (optional e-mail), and a dashboard of the pipeline."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from invoice_archiver.constants import METRICS_NAMESPACE, SERVICE_NAME, Metric
from invoice_archiver.infra.encryption import allow_cloudwatch_alarms
from invoice_archiver.infra.pipeline import Pipeline
from invoice_archiver.infra.schedule import Schedule
from invoice_archiver.infra.settings import DeploySettings

_PERIOD = Duration.minutes(5)


def invoice_metric(
    name: str, *, period: Duration = _PERIOD, statistic: str = cloudwatch.Stats.SUM
) -> cloudwatch.Metric:
    """One of the functions' metrics (Powertools adds the `service` dimension to every metric)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=period,
    )


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

        self.alarms: list[cloudwatch.Alarm] = [
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
            self._above_zero(
                "ListerErrors",
                pipeline.lister.metric_errors(period=_PERIOD),
                "The lister failed (the scheduled run may be incomplete)",
            ),
            self._above_zero(
                "FetcherErrors",
                pipeline.fetcher.metric_errors(period=_PERIOD),
                "The fetcher failed as a whole (not one invoice: see InvoicesFailed)",
            ),
            self._above_zero(
                "ListerThrottles",
                pipeline.lister.metric_throttles(period=_PERIOD),
                "Lambda throttled the lister",
            ),
            self._above_zero(
                "FetcherThrottles",
                pipeline.fetcher.metric_throttles(period=_PERIOD),
                "Lambda throttled the fetcher (account concurrency exhausted?)",
            ),
            self._above_zero(
                "InvoicesFailed",
                invoice_metric(Metric.INVOICES_FAILED),
                "At least one invoice could not be archived",
            ),
            # The lister counts it once a day from MISSING_INVOICE_DAY on; a day-long period keeps the
            # alarm in ALARM until the next run finds the invoice.
            self._above_zero(
                "AccountsWithoutInvoice",
                invoice_metric(Metric.ACCOUNTS_WITHOUT_INVOICE, period=Duration.days(1), statistic="Maximum"),
                f"A configured account has no invoice for the last complete billing period by day "
                f"{settings.missing_invoice_day} of the month",
            ),
            # Each scheduled run counts the invoices unsettled for longer than unsettled_after_days (and
            # re-queues them); a day-long period keeps the alarm in ALARM until a run finds them settled.
            self._above_zero(
                "InvoicesUnsettled",
                invoice_metric(Metric.INVOICES_UNSETTLED, period=Duration.days(1), statistic="Maximum"),
                f"An invoice is still not archived (or its event not sent) {settings.unsettled_after_days} "
                "days after it was first claimed; `invoice-archiver status` shows it and why",
            ),
            # Per run from the lister, per invoice from the fetcher: a role that cannot be assumed, or the
            # Invoicing API denying a source. The ledger's source record says which and why.
            self._above_zero(
                "SourcesFailed",
                invoice_metric(Metric.SOURCES_FAILED, period=Duration.hours(1), statistic="Maximum"),
                "A source (payer account or invoice-unit receiver) could not be read; "
                "`invoice-archiver status` names it and the reason",
            ),
            # A message, a listing continuation or a lister request named a source that is neither
            # configured nor discovered: a forgery, or a configuration changed under queued messages.
            self._above_zero(
                "SourcesRefused",
                invoice_metric(Metric.SOURCES_REFUSED, statistic="Sum"),
                "A message, listing continuation or lister request named a source that is not configured; "
                "it was refused unread (the DLQ holds it with ErrorType SourceRefused and the reason)",
            ),
        ]
        action = actions.SnsAction(self.topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)

        self.dashboard = self._dashboard(pipeline, schedule)

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
            period=_PERIOD, statistic=cloudwatch.Stats.MAXIMUM
        )
        return self._above_zero(construct_id, metric, description)

    def _above_zero(
        self, construct_id: str, metric: cloudwatch.IMetric, description: str
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=f"invoice-archiver: {description}",
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _dashboard(self, pipeline: Pipeline, schedule: Schedule) -> cloudwatch.Dashboard:
        hour = Duration.hours(1)
        functions: list[lambda_.Function] = [pipeline.lister, pipeline.fetcher]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(35))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invoices (per hour)",
                width=12,
                left=[
                    invoice_metric(name, period=hour)
                    for name in (
                        Metric.INVOICES_LISTED,
                        Metric.INVOICES_ARCHIVED,
                        Metric.INVOICES_SKIPPED,
                        Metric.INVOICES_RETRIED,
                        Metric.INVOICES_FAILED,
                        Metric.MESSAGES_QUARANTINED,
                    )
                ],
            ),
            cloudwatch.GraphWidget(
                title="Documents and bytes archived (per hour)",
                width=12,
                left=[invoice_metric(Metric.DOCUMENTS_ARCHIVED, period=hour)],
                right=[invoice_metric(Metric.BYTES_ARCHIVED, period=hour)],
            ),
        )
        day = Duration.days(1)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Keeping the archive true (per day)",
                width=12,
                left=[
                    invoice_metric(name, period=day)
                    for name in (
                        Metric.INVOICES_ENQUEUED,
                        Metric.INVOICES_RECHECKED,
                        Metric.INVOICES_REVISED,
                        Metric.DOCUMENTS_NO_LONGER_LISTED,
                        Metric.EVENTS_PUBLISHED,
                    )
                ],
            ),
            cloudwatch.GraphWidget(
                title="Accounts without last month's invoice; invoices unsettled too long",
                width=12,
                left=[
                    invoice_metric(Metric.ACCOUNTS_WITHOUT_INVOICE, period=day, statistic="Maximum"),
                    invoice_metric(Metric.INVOICES_UNSETTLED, period=day, statistic="Maximum"),
                ],
                right=[invoice_metric(Metric.SOURCES_FAILED, period=day, statistic="Maximum")],
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invoice queue",
                width=12,
                left=[
                    pipeline.invoice_queue.metric_approximate_number_of_messages_visible(),
                    pipeline.invoice_queue.metric_approximate_number_of_messages_not_visible(),
                ],
                right=[pipeline.invoice_queue.metric_approximate_age_of_oldest_message()],
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                width=12,
                left=[
                    pipeline.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        label="Fetcher DLQ"
                    ),
                    schedule.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        label="Schedule DLQ"
                    ),
                ],
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invocations and errors",
                width=8,
                left=[fn.metric_invocations() for fn in functions],
                right=[fn.metric_errors() for fn in functions],
            ),
            cloudwatch.GraphWidget(
                title="Duration (p95)",
                width=8,
                left=[fn.metric_duration(statistic="p95") for fn in functions],
            ),
            cloudwatch.GraphWidget(
                title="Throttles and concurrency",
                width=8,
                left=[fn.metric_throttles() for fn in functions],
                right=[
                    fn.metric("ConcurrentExecutions", statistic=cloudwatch.Stats.MAXIMUM) for fn in functions
                ],
            ),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", width=24, alarms=list(self.alarms))
        )
        return dashboard
