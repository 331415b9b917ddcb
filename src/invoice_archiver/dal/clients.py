"""boto3 clients, created lazily once per process and shared (boto3 clients are thread-safe).

Endpoints come from the SDK's own AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> variables, so the
same code talks to AWS, to moto's server or to the Invoicing emulator without a branch.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_invoicing import InvoicingClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

_POOL = 32


@cache
def invoicing(region: str, max_attempts: int) -> InvoicingClient:
    # Standard retry mode retries ThrottlingException and 5xx with exponential backoff and jitter.
    config = Config(retries={"mode": "standard", "max_attempts": max_attempts}, max_pool_connections=_POOL)
    return boto3.session.Session().client("invoicing", region_name=region, config=config)


@cache
def s3() -> S3Client:
    config = Config(retries={"mode": "standard"}, max_pool_connections=_POOL)
    return boto3.session.Session().client("s3", config=config)


@cache
def sqs() -> SQSClient:
    return boto3.session.Session().client("sqs", config=Config(retries={"mode": "standard"}))


@cache
def dynamodb() -> DynamoDBClient:
    config = Config(retries={"mode": "standard"}, max_pool_connections=_POOL)
    return boto3.session.Session().client("dynamodb", config=config)


@cache
def sts() -> STSClient:
    return boto3.session.Session().client("sts")


def reset() -> None:
    """Forget every cached client (tests that switch endpoints call this)."""
    for factory in (invoicing, s3, sqs, dynamodb, sts):
        factory.cache_clear()
