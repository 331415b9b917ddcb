"""dal.sources on the sandbox: payer roles assumed through moto's STS, cached, refreshed before expiry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.sts.models import sts_backends

from invoice_archiver.dal import clients, sources
from invoice_archiver.dal.sources import ROLE_SESSION_NAME, SourceClients, SourceUnavailable
from invoice_archiver.models.source import Source
from invoice_archiver.sandbox.runner import Sandbox

PAYER = "111111111111"
OTHER_PAYER = "222222222222"
RECEIVER = "333333333333"
ROLE = f"arn:aws:iam::{PAYER}:role/invoice-archiver-reader"
OTHER_ROLE = f"arn:aws:iam::{OTHER_PAYER}:role/billing/invoice-archiver-reader"
EXTERNAL_ID = "archive-7f3a"


class Clock:
    """What the credentials' expiry is judged by: starts now, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def on_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    clients.reset()
    sources.reset()
    yield sandbox
    clients.reset()
    sources.reset()


def assumed(account: str) -> list[Any]:
    """What moto's STS recorded of every AssumeRole of a role in `account`."""
    roles: list[Any] = sts_backends[account]["aws"].assumed_roles
    return roles


def test_a_source_role_is_assumed_with_the_external_id_and_the_archivers_session_name(
    on_sandbox: Sandbox,
) -> None:
    # Given the archive's base credentials and a payer's role
    cache = SourceClients(external_id=EXTERNAL_ID, allowed_roles=[ROLE])
    # When we ask who the source's clients act as
    identity = cache.sts(Source(PAYER, ROLE)).get_caller_identity()
    # Then it is the payer's role, in a session named after the archiver
    assert identity["Account"] == PAYER
    assert identity["Arn"] == f"arn:aws:sts::{PAYER}:assumed-role/invoice-archiver-reader/{ROLE_SESSION_NAME}"
    # And STS saw one AssumeRole, with the ExternalId
    [role] = assumed(PAYER)
    assert (role.role_arn, role.external_id, role.session_name) == (ROLE, EXTERNAL_ID, ROLE_SESSION_NAME)
    # While the base credentials stay the archive's own
    assert clients.sts().get_caller_identity()["Account"] not in (PAYER, OTHER_PAYER)


def test_sources_behind_one_role_share_its_credentials_and_clients(on_sandbox: Sandbox) -> None:
    cache = SourceClients(external_id=EXTERNAL_ID)
    # Given a payer and an invoice-unit receiver read through the payer's role, and another payer
    payer = cache.invoicing(Source(PAYER, ROLE), region="us-east-1", max_attempts=3)
    receiver = cache.invoicing(Source(RECEIVER, ROLE), region="us-east-1", max_attempts=3)
    other = cache.invoicing(Source(OTHER_PAYER, OTHER_ROLE), region="us-east-1", max_attempts=3)
    # Then the two sources behind one role share one client, the other payer has its own
    assert payer is receiver
    assert other is not payer
    # And each role was assumed once, however often its clients are asked for
    cache.invoicing(Source(PAYER, ROLE), region="us-east-1", max_attempts=3)
    assert len(assumed(PAYER)) == 1
    assert len(assumed(OTHER_PAYER)) == 1
    # And the receiver's calls are made as the payer's role
    assert cache.sts(Source(RECEIVER, ROLE)).get_caller_identity()["Account"] == PAYER
    assert len(assumed(PAYER)) == 1


def test_a_source_without_a_role_uses_the_functions_own_shared_client(on_sandbox: Sandbox) -> None:
    cache = SourceClients()
    own = cache.invoicing(Source(PAYER), region="us-east-1", max_attempts=3)
    assert own is clients.invoicing("us-east-1", 3, 0.0)
    assert cache.sts(Source(PAYER)) is clients.sts()


def test_credentials_are_refreshed_before_they_expire(on_sandbox: Sandbox) -> None:
    # Given credentials for one hour, judged by a clock the test holds
    clock = Clock()
    cache = SourceClients(external_id=EXTERNAL_ID, clock=clock)
    source = Source(PAYER, ROLE)
    sts = cache.sts(source)
    first = cache.credentials(ROLE).get_frozen_credentials().access_key
    # When 40 minutes pass, Then they are still used as they are
    clock.now += timedelta(minutes=40)
    assert sts.get_caller_identity()["Account"] == PAYER
    assert len(assumed(PAYER)) == 1
    # When 52 minutes have passed (8 left, inside botocore's 10-minute mandatory window)
    clock.now += timedelta(minutes=12)
    assert sts.get_caller_identity()["Account"] == PAYER
    # Then the role was assumed again before the call, and the client signs with the new credentials
    assert len(assumed(PAYER)) == 2
    assert cache.credentials(ROLE).get_frozen_credentials().access_key != first


def test_concurrent_first_use_assumes_the_role_once(on_sandbox: Sandbox) -> None:
    cache = SourceClients(external_id=EXTERNAL_ID)
    barrier = threading.Barrier(8)
    found: list[object] = []

    def worker() -> None:
        barrier.wait()
        found.append(cache.invoicing(Source(PAYER, ROLE), region="us-east-1", max_attempts=3))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in found}) == 1
    assert len(assumed(PAYER)) == 1


def test_a_role_that_is_not_configured_is_never_assumed(on_sandbox: Sandbox) -> None:
    cache = SourceClients(external_id=EXTERNAL_ID, allowed_roles=[OTHER_ROLE])
    with pytest.raises(SourceUnavailable) as caught:
        cache.invoicing(Source(PAYER, ROLE), region="us-east-1", max_attempts=3)
    assert caught.value.role_arn == ROLE
    assert caught.value.code == "NotConfigured"
    assert str(caught.value) == f"cannot assume {ROLE}: not one of the configured SOURCE_ROLE_ARNS"
    assert assumed(PAYER) == []


def test_a_refusal_from_sts_is_a_typed_error_naming_the_role_and_the_reason(on_sandbox: Sandbox) -> None:
    # Given a session name STS refuses (longer than 64 characters)
    cache = SourceClients(external_id=EXTERNAL_ID, session_name="x" * 65)
    # When a client for the source is asked for
    with pytest.raises(SourceUnavailable) as caught:
        cache.sts(Source(PAYER, ROLE))
    # Then the error names the role, STS's code and its message
    assert caught.value.role_arn == ROLE
    assert caught.value.code == "ValidationError"
    assert str(caught.value).startswith(f"cannot assume {ROLE}: ValidationError: ")
    assert "roleSessionName" in caught.value.reason


def test_an_unreachable_sts_is_a_typed_error_and_the_other_sources_still_work(
    on_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an STS endpoint that refuses connections
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    clients.reset()
    cache = SourceClients(external_id=EXTERNAL_ID)
    # When a role source is asked for, Then the error names the role and the connection failure
    with pytest.raises(SourceUnavailable, match=rf"^cannot assume {ROLE}: Could not connect"):
        cache.invoicing(Source(PAYER, ROLE), region="us-east-1", max_attempts=1)
    # And a source read with the function's own credentials is unaffected
    assert cache.invoicing(Source(RECEIVER), region="us-east-1", max_attempts=1) is not None


def test_the_process_keeps_one_cache_per_configuration(on_sandbox: Sandbox) -> None:
    first = sources.source_clients(EXTERNAL_ID, (ROLE,))
    assert sources.source_clients(EXTERNAL_ID, (ROLE,)) is first
    sources.reset()
    assert sources.source_clients(EXTERNAL_ID, (ROLE,)) is not first
