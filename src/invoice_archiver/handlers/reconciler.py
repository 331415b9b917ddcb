"""Reconciler Lambda: once a month (EventBridge), the previous period's archive against the cost data.

The result goes to the archive bucket under reconciliation/YYYY-MM/ (create-only); the metrics count
the invoices missing from the archive (alarmed), the problems and the matches. An export that cannot be
found or read fails the invocation (the function's error alarm), naming what to fix.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invoice_archiver.constants import Metric
from invoice_archiver.dal import clients, reconciliation_results, sdk
from invoice_archiver.handlers.environment import init_environment, settings
from invoice_archiver.logic import scheduled_reconciliation
from invoice_archiver.models.reconciliation import Kind
from invoice_archiver.observability import logger, metrics, tracer

# Cold start: fail initialisation, naming what is missing, if the loaded SDK is older than the calls.
sdk.ensure(
    clients.botocore_session(),
    [
        sdk.Needs(
            "s3", "ListObjectsV2", request=("Prefix", "Delimiter"), response=("Contents", "CommonPrefixes")
        ),
        sdk.Needs("s3", "GetObject", request=("Range",), response=("Body",)),
        reconciliation_results.WRITING,
        sdk.Needs("dynamodb", "Query", request=("KeyConditionExpression",), response=("Items",)),
    ],
)


@init_environment("reconciler")
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    recorded = scheduled_reconciliation.run(
        event, settings("reconciler"), s3=clients.s3(), dynamodb=clients.dynamodb()
    )
    outcome = recorded.outcome
    metrics.add_metric(
        name=Metric.INVOICES_MISSING_FROM_ARCHIVE, unit="Count", value=outcome.missing_from_archive
    )
    metrics.add_metric(name=Metric.RECONCILIATION_PROBLEMS, unit="Count", value=outcome.problems)
    metrics.add_metric(name=Metric.INVOICES_RECONCILED, unit="Count", value=outcome.count(Kind.MATCHED))
    response = {
        "billing_period": outcome.period,
        "result_key": recorded.key,
        "reconciled": outcome.problems == 0,
        "problems": outcome.problems,
        "missing_from_archive": outcome.missing_from_archive,
        "final": outcome.finality.final,
    }
    logger.info("reconciliation done", extra=response)
    return response
