"""InvoiceMessage.role_arn and .source: a message names the role its invoice is read through, never
credentials; a message from before several payers (no role_arn) reads with the function's own."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.source import Source

from .factories import ACCOUNT, FULLWIDTH_ACCOUNT, MessageFactory

PAYER_ROLE = "arn:aws:iam::210987654321:role/billing/invoice-archiver-reader"
OWN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/invoice-archiver-reader"


def test_a_message_without_role_arn_is_read_with_the_functions_own_credentials(
    make_message: MessageFactory,
) -> None:
    # Given a message body as the lister sent it before several payers: no role_arn key at all
    body = json.loads(make_message().model_dump_json())
    del body["role_arn"]

    # When the fetcher parses it
    message = InvoiceMessage.model_validate_json(json.dumps(body))

    # Then its source is its account, with no role
    assert message.role_arn is None
    assert message.source == Source(ACCOUNT, None)


@pytest.mark.parametrize("role", [OWN_ROLE, PAYER_ROLE, "arn:aws-us-gov:iam::123456789012:role/r+=.@-_"])
def test_a_message_naming_a_role_has_that_source_and_survives_the_queue(
    make_message: MessageFactory, role: str
) -> None:
    # Given a message for an invoice the lister read through a role (its own account's, or a payer's)
    message = make_message(role_arn=role)

    # When serialised as the SQS body and read back
    again = InvoiceMessage.model_validate_json(message.model_dump_json())

    # Then the role is kept and the source is (the invoice's account, that role)
    assert again == message
    assert again.source == Source(ACCOUNT, role)
    assert again.source.role_arn == role


@pytest.mark.parametrize(
    "role",
    [
        "",
        "invoice-archiver-reader",
        "arn:aws:iam::12345678901:role/short-account",
        "arn:aws:iam::123456789012:user/not-a-role",
        "arn:aws:sts::123456789012:assumed-role/reader/session",
        "arn:aws:iam::123456789012:role/",
        f"arn:aws:iam::{FULLWIDTH_ACCOUNT}:role/fullwidth-digits",
        "arn:aws:iam::123456789012:role/reader\n",
        "arn:aws:iam::123456789012:role/" + "r" * 65,
    ],
)
def test_a_role_arn_that_is_not_an_iam_role_is_refused(make_message: MessageFactory, role: str) -> None:
    with pytest.raises(ValidationError, match="role_arn"):
        make_message(role_arn=role)


@pytest.mark.parametrize(
    "credential_field", ["credentials", "aws_access_key_id", "session_token", "AccessKeyId"]
)
def test_a_message_never_carries_credentials(make_message: MessageFactory, credential_field: str) -> None:
    # Given a body with a role and, beside it, something credential-like
    body = json.loads(make_message(role_arn=PAYER_ROLE).model_dump_json())
    body[credential_field] = "ASIAEXAMPLE"

    # When parsed, Then refused: a message has no place for credentials
    with pytest.raises(ValidationError, match=credential_field):
        InvoiceMessage.model_validate_json(json.dumps(body))
