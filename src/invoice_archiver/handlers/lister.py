"""Lister Lambda: a scheduled tick (or an explicit re-run) -> one SQS message per invoice."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invoice_archiver.dal import clients, invoicing, queue, sdk
from invoice_archiver.handlers.environment import init_environment, settings
from invoice_archiver.logic.listing import plan, run_listing
from invoice_archiver.models.requests import parse_lister_event
from invoice_archiver.observability import logger, metrics, tracer

# Cold start: fail initialisation, naming what is missing, if the loaded SDK is older than the API.
sdk.ensure(
    clients.botocore_session(),
    [invoicing.LISTING, queue.SENDING, sdk.Needs("sts", "GetCallerIdentity", response=("Account",))],
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
    result = run_listing(
        queries,
        invoicing=clients.invoicing(config.invoicing_region, config.invoicing_max_attempts),
        sqs=clients.sqs(),
        queue_url=config.invoice_queue_url,
    )
    logger.info("listing done", extra=result.as_dict())
    return result.as_dict()
