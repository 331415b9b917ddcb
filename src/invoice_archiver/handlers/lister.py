"""Lister Lambda: a scheduled tick (or an explicit re-run) -> one SQS message per invoice that is new,
changed, not yet archived or due for a revisit (compared with the ledger)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invoice_archiver.constants import Metric
from invoice_archiver.dal import clients, invoicing, queue, sdk, tracking
from invoice_archiver.handlers.environment import init_environment, settings
from invoice_archiver.logic.listing import LedgerView, plan, run_listing
from invoice_archiver.logic.missing import accounts_without_invoice
from invoice_archiver.models.requests import ListRequest, ScheduledEvent, parse_lister_event
from invoice_archiver.observability import logger, metrics, tracer

# Cold start: fail initialisation, naming what is missing, if the loaded SDK is older than the API.
sdk.ensure(
    clients.botocore_session(),
    [
        invoicing.LISTING,
        queue.SENDING,
        queue.QUARANTINING,
        tracking.LISTING,
        sdk.Needs("sts", "GetCallerIdentity", response=("Account",)),
    ],
)


def _caller_account() -> str:
    return str(clients.sts().get_caller_identity()["Account"])


@init_environment("lister")
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = settings("lister")
    request = parse_lister_event(event)
    queries = plan(request, config, _caller_account)
    scheduled = isinstance(request, ScheduledEvent)
    now = request.time if isinstance(request, ScheduledEvent) else datetime.now(UTC)
    result = run_listing(
        queries,
        invoicing=clients.invoicing(config.invoicing_region, config.invoicing_max_attempts),
        sqs=clients.sqs(),
        queue_url=config.invoice_queue_url,
        ledger=LedgerView(clients.dynamodb(), config.ledger_table),
        now=now,
        recheck=isinstance(request, ListRequest) and request.recheck,
        dead_letter_queue_url=config.dead_letter_queue_url,
    )
    response = result.as_dict()
    if scheduled:
        missing = accounts_without_invoice(
            result.listed_per_period, result.accounts, now, config.missing_invoice_day
        )
        if missing is not None:
            metrics.add_metric(name=Metric.ACCOUNTS_WITHOUT_INVOICE, unit="Count", value=len(missing))
            response["accounts_without_invoice"] = missing
            if missing:
                logger.warning("no invoice for the last complete billing period", extra={"accounts": missing})
    logger.info("listing done", extra=response)
    return response
