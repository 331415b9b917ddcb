"""invoice_archiver.models.messages: the SQS message between lister and fetcher (a pointer), and the
pre-signed-URL guard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from invoice_archiver.models.messages import InvoiceMessage, contains_presigned_url
from invoice_archiver.models.period import BillingPeriod

from .factories import ACCOUNT, FULLWIDTH_ACCOUNT, OTHER_ACCOUNT, MessageFactory


def test_valid_message(make_message: MessageFactory) -> None:
    # Given the identifiers of one invoice
    message = make_message()

    # Then it validates as a version 2 pointer, with its period typed and no summary
    assert message.version == 2
    assert message.account_id == ACCOUNT
    assert message.period == BillingPeriod(2025, 6)
    assert message.summary is None


def test_json_round_trip_is_lossless_and_carries_identifiers_only(make_message: MessageFactory) -> None:
    # Given a message with every field set and a unicode invoice id
    message = make_message(
        invoice_id="INV/2025 ü-1",
        reason="changed",
        listed_at="2026-11-03T06:00:00+00:00",
        role_arn="arn:aws:iam::210987654321:role/invoice-archiver-reader",
    )

    # When serialised as the SQS body and read back (as the fetcher does)
    body = message.model_dump_json(exclude_none=True)
    again = InvoiceMessage.model_validate_json(body)

    # Then nothing is lost and the body holds identifiers only: no fact about the invoice
    assert again == message
    assert set(json.loads(body)) == {
        "version",
        "account_id",
        "invoice_id",
        "billing_period",
        "reason",
        "listed_at",
        "role_arn",
    }


def test_a_version_2_message_carrying_a_summary_is_refused(make_message: MessageFactory) -> None:
    # Given a pointer that smuggles a summary in, When built, Then refused: facts come from the API
    with pytest.raises(ValidationError, match="carries no summary"):
        make_message(version=2, summary={"AccountId": ACCOUNT, "InvoiceId": "EUINGB25-123456"})


def test_a_version_1_message_is_still_accepted_its_summary_only_a_hint(make_message: MessageFactory) -> None:
    # Given a message in the form sent before messages became pointers
    message = make_message(version=1)

    # Then it parses, and its summary is kept apart as a hint (never archived: see logic.evidence)
    assert message.version == 1
    assert message.legacy_summary is not None
    assert message.legacy_summary["InvoiceId"] == message.invoice_id


def test_a_version_1_message_without_its_summary_is_refused(make_message: MessageFactory) -> None:
    with pytest.raises(ValidationError, match="carries its summary"):
        InvoiceMessage(version=1, account_id=ACCOUNT, invoice_id="INV-1", billing_period="2025-06")


def test_listed_at_must_be_timezone_aware(make_message: MessageFactory) -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        make_message(listed_at="2026-11-03T06:00:00")


@pytest.mark.parametrize("account", ["12345678901", "1234567890123", "12345678901a", "", " 123456789012"])
def test_account_id_must_be_twelve_digits(make_message: MessageFactory, account: str) -> None:
    with pytest.raises(ValidationError, match="account_id"):
        make_message(account_id=account)


@pytest.mark.parametrize("period", ["2025-13", "2025-00", "2025-1", "2025/06", "202506", "2025-06-01", ""])
def test_billing_period_must_be_yyyy_mm(make_message: MessageFactory, period: str) -> None:
    with pytest.raises(ValidationError, match="billing_period"):
        make_message(billing_period=period)


def test_legacy_summary_invoice_id_must_match(make_message: MessageFactory) -> None:
    # Given a version 1 summary about another invoice, When built, Then refused
    summary = {"AccountId": ACCOUNT, "InvoiceId": "OTHER"}
    with pytest.raises(ValidationError, match=r"summary.InvoiceId does not match invoice_id"):
        make_message(invoice_id="INV-1", summary=summary)


def test_legacy_summary_account_id_must_match(make_message: MessageFactory) -> None:
    summary = {"AccountId": OTHER_ACCOUNT, "InvoiceId": "INV-1"}
    with pytest.raises(ValidationError, match=r"summary.AccountId does not match account_id"):
        make_message(invoice_id="INV-1", summary=summary)


def test_legacy_summary_without_ids_is_refused(make_message: MessageFactory) -> None:
    with pytest.raises(ValidationError, match="does not match"):
        make_message(summary={})


@pytest.mark.parametrize("bad", ["\n", "\r", "\t", "\x00", "\x1b[31m", "\x7f"])
def test_invoice_id_with_control_characters_is_refused(make_message: MessageFactory, bad: str) -> None:
    # Given an invoice id with a control character (log injection, key confusion)
    invoice_id = f"INV{bad}1"

    # When built, Then refused
    with pytest.raises(ValidationError, match="control characters"):
        make_message(invoice_id=invoice_id)


def test_invoice_id_allows_printable_unicode(make_message: MessageFactory) -> None:
    assert make_message(invoice_id="Facture n° 12/2025 — é 😀").invoice_id == "Facture n° 12/2025 — é 😀"


@pytest.mark.parametrize("invoice_id", ["", "x" * 1025])
def test_invoice_id_length_is_bounded(make_message: MessageFactory, invoice_id: str) -> None:
    with pytest.raises(ValidationError, match="invoice_id"):
        make_message(invoice_id=invoice_id)


def test_invoice_id_of_maximum_length_is_accepted(make_message: MessageFactory) -> None:
    assert len(make_message(invoice_id="x" * 1024).invoice_id) == 1024


def test_unknown_version_and_fields_are_refused(make_message: MessageFactory) -> None:
    with pytest.raises(ValidationError, match="version"):
        make_message(version=3)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        make_message(url="https://example.test/")


def test_message_is_frozen(make_message: MessageFactory) -> None:
    message = make_message()
    with pytest.raises(ValidationError, match="frozen"):
        message.invoice_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides",
    [
        {"account_id": FULLWIDTH_ACCOUNT},
        {"billing_period": "".join(chr(0xFF10 + int(d)) for d in "2025") + "-06"},
    ],
    ids=["account_id", "billing_period"],
)
def test_ids_reject_non_ascii_digits(make_message: MessageFactory, overrides: dict[str, str]) -> None:
    # Given an account id or period written with fullwidth digits, When built, Then refused
    with pytest.raises(ValidationError):
        make_message(**overrides)


@pytest.mark.parametrize("bad", ["\x85", "\x9b31m"], ids=["NEL", "CSI"])
def test_invoice_id_with_c1_control_characters_is_refused(make_message: MessageFactory, bad: str) -> None:
    # Given U+0085 (NEXT LINE, a line break to str.splitlines and many log viewers) or U+009B (CSI)
    with pytest.raises(ValidationError, match="control characters"):
        make_message(invoice_id=f"INV{bad}1")


# --- contains_presigned_url -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "https://bucket.s3.amazonaws.com/doc.pdf?X-Amz-Signature=abc",
        "https://bucket.s3.amazonaws.com/doc.pdf?X-Amz-Credential=AKIA%2F20261103",
        "x-amz-signature=abc",
        "https://bucket.s3.amazonaws.com/doc.pdf?AWSAccessKeyId=AKIA&Expires=1700000000&Signature=abc",
        {"a": {"b": ["x", ("y", "https://z.test/?X-Amz-Signature=1")]}},
        ["ok", {"Url": "http://127.0.0.1:8080/x?Signature=s&Expires=1"}],
        {"X-Amz-Credential": "key used as a name"},
    ],
)
def test_presigned_urls_are_found_at_any_depth(value: Any) -> None:
    assert contains_presigned_url(value) is True


@pytest.mark.parametrize(
    "value",
    [
        "EUINGB25-123456",
        "see https://procure.example.com/po/4711",
        "HTTPS://EXAMPLE.TEST/",
        "s3://bucket/key",
        "Signature=J. Smith",
        "Expires=2027-01-01",
        {"PurchaseOrderNumber": "PO 4711, http://intranet/po?id=4711&Expires=never"},
        {"AccountId": ACCOUNT, "Amount": 12, "Nested": [None, 1.5, True]},
        [],
        None,
    ],
)
def test_customer_text_holding_a_plain_url_is_data(value: Any) -> None:
    # A purchase-order note, a name or an address holding a URL is archived like any other value.
    assert contains_presigned_url(value) is False
