"""The pipeline's dashboard: what flows, what keeps the archive true, the queues, the functions, alarms."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from invoice_archiver.constants import METRICS_NAMESPACE, SERVICE_NAME, Metric
from invoice_archiver.infra.pipeline import Pipeline
from invoice_archiver.infra.schedule import Schedule

PERIOD = Duration.minutes(5)
HOUR = Duration.hours(1)
DAY = Duration.days(1)


def invoice_metric(
    name: str, *, period: Duration = PERIOD, statistic: str = cloudwatch.Stats.SUM
) -> cloudwatch.Metric:
    """One of the functions' metrics (Powertools adds the `service` dimension to every metric)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=period,
    )


def alarm_above_zero(
    scope: Construct, construct_id: str, metric: cloudwatch.IMetric, description: str
) -> cloudwatch.Alarm:
    """An alarm the moment `metric` is above zero in one period; no data is not a breach."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=f"invoice-archiver: {description}",
        metric=metric,
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


def build_dashboard(
    scope: Construct, pipeline: Pipeline, schedule: Schedule, alarms: list[cloudwatch.Alarm]
) -> cloudwatch.Dashboard:
    dashboard = cloudwatch.Dashboard(scope, "Dashboard", default_interval=Duration.days(35))
    dashboard.add_widgets(*_flow())
    dashboard.add_widgets(*_keeping_true())
    dashboard.add_widgets(*_queues(pipeline, schedule))
    dashboard.add_widgets(*_functions([pipeline.lister, pipeline.fetcher]))
    dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", width=24, alarms=list(alarms)))
    return dashboard


def _flow() -> list[cloudwatch.IWidget]:
    listed = (
        Metric.INVOICES_LISTED,
        Metric.INVOICES_ARCHIVED,
        Metric.INVOICES_SKIPPED,
        Metric.INVOICES_RETRIED,
        Metric.INVOICES_FAILED,
        Metric.MESSAGES_QUARANTINED,
    )
    return [
        cloudwatch.GraphWidget(
            title="Invoices (per hour)", width=12, left=[invoice_metric(name, period=HOUR) for name in listed]
        ),
        cloudwatch.GraphWidget(
            title="Documents and bytes archived (per hour)",
            width=12,
            left=[invoice_metric(Metric.DOCUMENTS_ARCHIVED, period=HOUR)],
            right=[invoice_metric(Metric.BYTES_ARCHIVED, period=HOUR)],
        ),
    ]


def _keeping_true() -> list[cloudwatch.IWidget]:
    kept = (
        Metric.INVOICES_ENQUEUED,
        Metric.INVOICES_RECHECKED,
        Metric.INVOICES_REVISED,
        Metric.DOCUMENTS_NO_LONGER_LISTED,
        Metric.EVENTS_PUBLISHED,
    )
    return [
        cloudwatch.GraphWidget(
            title="Keeping the archive true (per day)",
            width=12,
            left=[invoice_metric(name, period=DAY) for name in kept],
        ),
        cloudwatch.GraphWidget(
            title="Accounts without last month's invoice; invoices unsettled too long",
            width=12,
            left=[
                invoice_metric(Metric.ACCOUNTS_WITHOUT_INVOICE, period=DAY, statistic="Maximum"),
                invoice_metric(Metric.INVOICES_UNSETTLED, period=DAY, statistic="Maximum"),
            ],
            right=[invoice_metric(Metric.SOURCES_FAILED, period=DAY, statistic="Maximum")],
        ),
    ]


def _queues(pipeline: Pipeline, schedule: Schedule) -> list[cloudwatch.IWidget]:
    invoices = pipeline.invoice_queue
    return [
        cloudwatch.GraphWidget(
            title="Invoice queue",
            width=12,
            left=[
                invoices.metric_approximate_number_of_messages_visible(),
                invoices.metric_approximate_number_of_messages_not_visible(),
            ],
            right=[invoices.metric_approximate_age_of_oldest_message()],
        ),
        cloudwatch.GraphWidget(
            title="Dead-letter queues",
            width=12,
            left=[
                pipeline.dead_letter_queue.metric_approximate_number_of_messages_visible(label="Fetcher DLQ"),
                schedule.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    label="Schedule DLQ"
                ),
            ],
        ),
    ]


def _functions(functions: list[lambda_.Function]) -> list[cloudwatch.IWidget]:
    return [
        cloudwatch.GraphWidget(
            title="Invocations and errors",
            width=8,
            left=[fn.metric_invocations() for fn in functions],
            right=[fn.metric_errors() for fn in functions],
        ),
        cloudwatch.GraphWidget(
            title="Duration (p95)", width=8, left=[fn.metric_duration(statistic="p95") for fn in functions]
        ),
        cloudwatch.GraphWidget(
            title="Throttles and concurrency",
            width=8,
            left=[fn.metric_throttles() for fn in functions],
            right=[fn.metric("ConcurrentExecutions", statistic=cloudwatch.Stats.MAXIMUM) for fn in functions],
        ),
    ]
