"""Lister Lambda: a scheduled tick (or an explicit re-run) -> one SQS message per invoice that is new,
changed, not yet archived or due for a revisit (compared with the ledger). A listing that outgrows its
invocation continues through the listing queue, which this function consumes too."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from invoice_archiver.constants import Metric
from invoice_archiver.dal import clients, invoicing, queue, sdk, sources
from invoice_archiver.dal.ledger import lister_view, source_records, unsettled
from invoice_archiver.handlers.environment import init_environment, settings, source_options
from invoice_archiver.logic.listing_job import ListingJob
from invoice_archiver.models.continuation import ListingContinuation
from invoice_archiver.models.source import SourceRefused
from invoice_archiver.observability import logger, metrics, tracer

# Cold start: fail initialisation, naming what is missing, if the loaded SDK is older than the API.
sdk.ensure(
    clients.botocore_session(),
    [
        invoicing.LISTING,
        invoicing.UNITS,
        queue.SENDING,
        queue.QUARANTINING,
        lister_view.LISTING,
        unsettled.READING,
        *source_records.RECORDING,
        sdk.Needs("sts", "GetCallerIdentity", response=("Account",)),
        sdk.Needs(
            "sts", "AssumeRole", request=("RoleArn", "RoleSessionName", "ExternalId", "DurationSeconds")
        ),
    ],
)


def _caller_account() -> str:
    return str(clients.sts().get_caller_identity()["Account"])


def job(context: LambdaContext) -> ListingJob:
    config = settings("lister")
    return ListingJob(
        config,
        invoicing_for=sources.invoicing_for_role(**source_options(config)),
        sqs=clients.sqs(),
        dynamodb=clients.dynamodb(),
        caller_account=_caller_account,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )


@init_environment("lister")
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    listing = job(context)
    if "Records" not in event:
        try:
            response = listing.start(event)
        except SourceRefused as exc:  # a request may narrow the sources, never widen them
            metrics.add_metric(name=Metric.SOURCES_REFUSED, unit="Count", value=1)
            logger.error("lister request refused", extra={"reason": str(exc)})
            raise
    else:  # the listing queue: one continuation per record (the stack sets batch size 1)
        response = {}
        for record in event["Records"]:
            continuation = _continuation(record)
            if continuation is None:
                continue
            try:
                response = listing.resume(continuation)
            except SourceRefused as exc:
                metrics.add_metric(name=Metric.SOURCES_REFUSED, unit="Count", value=1)
                _quarantine(record, str(exc), "SourceRefused")
    # Not the invoices a `report_enqueued` request names: the response carries them, a log line need not.
    summary = {name: value for name, value in response.items() if name != "enqueued"}
    logger.info("listing done" if not response.get("continued") else "listing piece done", extra=summary)
    return response


def _continuation(record: dict[str, Any]) -> ListingContinuation | None:
    """The record's continuation; a malformed one goes to the DLQ with its reason (never retried)."""
    try:
        return ListingContinuation.model_validate_json(record.get("body") or "")
    except ValidationError as exc:
        reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        _quarantine(record, reason, "BadContinuation")
        return None


def _quarantine(record: dict[str, Any], reason: str, error_type: str) -> None:
    """A continuation that is never retried: to the DLQ with its reason (or fail, without a DLQ)."""
    queue.quarantine_record(
        clients.sqs(),
        settings("lister").dead_letter_queue_url,
        record.get("body") or json.dumps(None),
        message_id=str(record.get("messageId", "")),
        reason=reason,
        error_type=error_type,
    )
