"""invoice_archiver.dal.wire: what the API sent that the loaded SDK does not model is found, by path."""

from __future__ import annotations

from decimal import Decimal

from invoice_archiver.dal import wire


def test_members_the_model_lacks_are_listed_by_path_with_their_raw_values() -> None:
    # Given a raw summary from the wire and botocore's parse of it, which dropped three members
    raw = {
        "InvoiceId": "1",
        "IssuedDate": 1760000000,
        "NewTopLevel": {"Code": "X"},
        "Entity": {"InvoicingEntity": "AWS Inc.", "NewNested": "y"},
        "BillSourceAccounts": ["111122223333"],
        "Amounts": [{"Value": "1.00", "NewInList": True}, {"Value": "2.00"}],
    }
    parsed = {
        "InvoiceId": "1",
        "IssuedDate": "2025-10-09T08:53:20+00:00",
        "Entity": {"InvoicingEntity": "AWS Inc."},
        "BillSourceAccounts": ["111122223333"],
        "Amounts": [{"Value": "1.00"}, {"Value": "2.00"}],
    }

    # Then exactly those are found, with their raw JSON values
    assert wire.unmodeled(raw, parsed) == {
        "NewTopLevel": {"Code": "X"},
        "Entity.NewNested": "y",
        "Amounts[0].NewInList": True,
    }


def test_a_fully_modeled_response_has_nothing_unmodeled() -> None:
    raw = {"InvoiceId": "1", "Entity": {"BillingEntity": "AWS"}, "List": [1, 2]}
    assert wire.unmodeled(raw, dict(raw)) == {}


def test_raw_numbers_with_a_fraction_are_decimals_never_floats() -> None:
    # Given a raw body as the before-parse hook keeps it
    wire._keep({"body": b'{"InvoiceSummaries": [{"NewAmount": 1234567890.123456789}]}'})

    # Then the number keeps every digit
    assert wire.last_raw_json()["InvoiceSummaries"][0]["NewAmount"] == Decimal("1234567890.123456789")


def test_a_body_that_is_not_json_gives_nothing() -> None:
    wire._keep({"body": b"<html>"})
    assert wire.last_raw_json() == {}


def test_a_kept_body_is_read_once_so_it_never_goes_stale() -> None:
    # Given a body kept by the hook and read
    wire._keep({"body": b'{"InvoiceSummaries": [{"New": 1}]}'})
    assert wire.last_raw_json() == {"InvoiceSummaries": [{"New": 1}]}

    # When the next call keeps nothing (a client without the hook), Then nothing stale is found
    assert wire.last_raw_json() == {}
