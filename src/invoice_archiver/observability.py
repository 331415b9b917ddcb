"""Logger, metrics and tracer: created once here, imported everywhere else."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from invoice_archiver.constants import METRICS_NAMESPACE, SERVICE_NAME

logger = Logger(service=SERVICE_NAME, utc=True)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
