"""boto3 clients, created lazily once per process and shared (boto3 clients are thread-safe).

Endpoints come from the SDK's own AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> variables, so the
same code talks to AWS, to moto's server or to the Invoicing emulator without a branch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import boto3
import botocore.session
from botocore.config import Config

from invoice_archiver.dal import ratelimit

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_invoicing import InvoicingClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

_POOL = 32
# A boto3 Session is not thread-safe: the local runner's workers may ask for a client at the same time.
_LOCK = threading.Lock()
# What else caches clients built on these (dal.sources' assumed-role sessions): forgotten with them.
_ON_RESET: list[Callable[[], None]] = []


@cache
def botocore_session() -> botocore.session.Session:
    """One botocore session per process: its loader parses each service model once, shared by the
    start-up guard (invoice_archiver.dal.sdk) and every client."""
    return botocore.session.get_session()


@cache
def session() -> boto3.session.Session:
    return boto3.session.Session(botocore_session=botocore_session())


@cache
def invoicing(region: str, max_attempts: int, calls_per_second: float = 0.0) -> InvoicingClient:
    """The Invoicing client, paced per operation (`ratelimit`): at most `calls_per_second` (0: no
    ceiling), slower after a ThrottlingException. Every thread of the process shares it and its pace.
    Standard retry mode retries ThrottlingException and 5xx with exponential backoff and jitter."""
    config = Config(retries={"mode": "standard", "max_attempts": max_attempts}, max_pool_connections=_POOL)
    with _LOCK:
        client = session().client("invoicing", region_name=region, config=config)
    ratelimit.attach(client, calls_per_second)
    return client


@cache
def s3() -> S3Client:
    config = Config(retries={"mode": "standard"}, max_pool_connections=_POOL)
    with _LOCK:
        return session().client("s3", config=config)


@cache
def sqs() -> SQSClient:
    with _LOCK:
        return session().client("sqs", config=Config(retries={"mode": "standard"}))


@cache
def dynamodb() -> DynamoDBClient:
    config = Config(retries={"mode": "standard"}, max_pool_connections=_POOL)
    with _LOCK:
        return session().client("dynamodb", config=config)


@cache
def sts() -> STSClient:
    with _LOCK:
        return session().client("sts")


def on_reset(forget: Callable[[], None]) -> None:
    """Have `reset` call `forget` too: a module that caches clients of its own registers here (it
    imports this module; this module never imports it)."""
    if forget not in _ON_RESET:
        _ON_RESET.append(forget)


def reset() -> None:
    """Forget every cached client, and whatever registered with `on_reset` (tests that switch endpoints
    call this)."""
    for factory in (invoicing, s3, sqs, dynamodb, sts, session, botocore_session):
        factory.cache_clear()
    for forget in list(_ON_RESET):
        forget()
