"""The fetcher's source plumbing without a network: which roles may be assumed, resetting the caches,
and the reason an unavailable source is recorded with."""

from __future__ import annotations

import pytest

from invoice_archiver.dal import clients, sources
from invoice_archiver.dal.invoicing import InvoiceUnavailable
from invoice_archiver.dal.sources import SourceUnavailable
from invoice_archiver.logic import failures
from invoice_archiver.models.source import Source

from .factories import ACCOUNT, MessageFactory

ROLE = f"arn:aws:iam::{ACCOUNT}:role/invoice-archiver-reader"
STRAY = "arn:aws:iam::210987654321:role/someone-elses"


def test_a_role_outside_the_configured_ones_is_never_assumed() -> None:
    # Given the fetcher's client factory with one configured role
    invoicing_for = sources.invoicing_for(
        external_id="x1", allowed_roles=(ROLE,), region="us-east-1", max_attempts=1
    )

    # When a message names another role, Then it is refused before any STS call, naming it
    with pytest.raises(SourceUnavailable) as refused:
        invoicing_for(Source(ACCOUNT, STRAY))
    assert refused.value.code == "NotConfigured"
    assert refused.value.role_arn == STRAY
    assert str(refused.value) == f"cannot assume {STRAY}: not one of the configured SOURCE_ROLE_ARNS"


def test_with_no_source_configured_every_role_is_refused() -> None:
    invoicing_for = sources.invoicing_for(
        external_id="", allowed_roles=(), region="us-east-1", max_attempts=1
    )
    with pytest.raises(SourceUnavailable) as refused:
        invoicing_for(Source(ACCOUNT, ROLE))
    assert refused.value.code == "NotConfigured"


def test_clients_reset_also_forgets_the_source_clients() -> None:
    # Given the process's source clients for a configuration
    first = sources.source_clients("x1", (ROLE,))
    assert sources.source_clients("x1", (ROLE,)) is first

    # When the shared clients are reset (tests switching endpoints do this)
    clients.reset()

    # Then the next caller gets fresh source clients, not the old endpoint's sessions
    assert sources.source_clients("x1", (ROLE,)) is not first


@pytest.mark.parametrize(
    ("role", "error", "reason"),
    [
        (
            ROLE,
            SourceUnavailable(ROLE, "AccessDenied: not authorized", "AccessDenied"),
            f"source unavailable: cannot assume {ROLE}: AccessDenied: not authorized",
        ),
        (
            ROLE,
            InvoiceUnavailable("AccessDeniedException", "User: x is not authorized"),
            f"source unavailable: {ROLE} is denied by the Invoicing API: "
            "AccessDeniedException: User: x is not authorized",
        ),
        (
            None,
            InvoiceUnavailable("AccessDeniedException", "User: x is not authorized"),
            "InvoiceUnavailable: AccessDeniedException: User: x is not authorized",
        ),
        (
            ROLE,
            InvoiceUnavailable("ResourceNotFoundException", "no such invoice"),
            "InvoiceUnavailable: ResourceNotFoundException: no such invoice",
        ),
    ],
)
def test_the_recorded_reason_names_the_source_only_when_the_source_is_at_fault(
    make_message: MessageFactory, role: str | None, error: Exception, reason: str
) -> None:
    message = make_message(role_arn=role)
    assert failures.describe(error, message) == reason
    assert failures.is_source_failure(error, message) == reason.startswith("source unavailable")
    assert isinstance(error, failures.PERMANENT)
