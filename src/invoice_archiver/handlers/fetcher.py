"""Fetcher Lambda: an SQS batch of invoices -> archived documents; a bad record fails alone."""

from __future__ import annotations

import functools
import json
import time
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from invoice_archiver.constants import Metric
from invoice_archiver.dal import archive, clients, events, invoicing, queue, sdk, sources
from invoice_archiver.dal.ledger import invoices
from invoice_archiver.handlers.batch import ConcurrentBatchProcessor
from invoice_archiver.handlers.environment import init_environment, settings, source_options
from invoice_archiver.logic import fetch_invoice
from invoice_archiver.logic.fetch_context import FetchContext
from invoice_archiver.logic.sourcing import KnownSources
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.source import SourceRefused
from invoice_archiver.observability import logger, metrics, tracer

# Cold start: fail initialisation, naming what is missing, if the loaded SDK is older than the API.
sdk.ensure(
    clients.botocore_session(),
    [
        invoicing.CONFIRMING,
        invoicing.DOCUMENTS,
        invoicing.UNITS,
        *archive.WRITING,
        *invoices.RECORDING,
        queue.QUARANTINING,
        events.PUBLISHING,
        sdk.Needs("sts", "GetCallerIdentity", response=("Account",)),
    ],
)


RELEASE_RESERVE_SECONDS = 20.0


@lru_cache(maxsize=1)
def context() -> FetchContext:
    config = settings("fetcher")
    options = source_options(config)
    return FetchContext(
        settings=config,
        invoicing_for=sources.invoicing_for(**options),
        s3=clients.s3(),
        dynamodb=clients.dynamodb(),
        sources=KnownSources(
            config,
            sources.invoicing_for_role(**options),
            lambda: str(clients.sts().get_caller_identity()["Account"]),
        ),
    )


def record_handler(record: SQSRecord, deadline: float | None = None) -> str:
    # Parsed here rather than by BatchProcessor(model=...): a message that can never parse is
    # quarantined to the DLQ with its reason instead of being redelivered until SQS gives up.
    try:
        message = InvoiceMessage.model_validate_json(record.body)
    except ValidationError as exc:
        reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        return _quarantine(record, reason, "MalformedMessage")
    logger.thread_safe_append_keys(
        invoice_id=message.invoice_id, account_id=message.account_id, message_id=record.message_id
    )
    try:
        return fetch_invoice.archive(context(), message, deadline).value
    except SourceRefused as exc:  # a message may only point at a configured or discovered source
        metrics.add_metric(name=Metric.SOURCES_REFUSED, unit="Count", value=1)
        return _quarantine(record, str(exc), "SourceRefused")
    finally:
        logger.thread_safe_remove_keys(["invoice_id", "account_id", "message_id"])


def invoice_key(record: dict[str, Any]) -> str:
    """The invoice a raw SQS record is about (its message id if the body is not a message)."""
    try:
        body = json.loads(record.get("body") or "")
        return f"{body['account_id']}/{body['invoice_id']}"
    except (ValueError, TypeError, KeyError):
        return str(record.get("messageId", ""))


def _quarantine(record: SQSRecord, reason: str, error_type: str) -> str:
    """A message that can never be archived: to the DLQ with its reason, never retried."""
    queue.quarantine_record(
        clients.sqs(),
        settings("fetcher").dead_letter_queue_url,
        record.body,
        message_id=record.message_id,
        reason=reason,
        error_type=error_type,
    )
    return "QUARANTINED"


@init_environment("fetcher")
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A processor per invocation: it holds the batch's state, and the local runner invokes
    # this handler from several threads at once (Lambda runs one invocation per process).
    # FETCHER_CONCURRENCY records at a time; the ledger claim keeps each invoice exactly once.
    processor = ConcurrentBatchProcessor(
        event_type=EventType.SQS, concurrency=settings("fetcher").fetcher_concurrency, key=invoice_key
    )
    # Downloads end this long before the invocation does, so a record that runs out of time still
    # releases its lease and records why (one conditional write; an aborted multipart upload).
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - RELEASE_RESERVE_SECONDS
    response = process_partial_response(
        event=event,
        record_handler=functools.partial(record_handler, deadline=deadline),
        processor=processor,
        context=context,
    )
    return dict(response)
