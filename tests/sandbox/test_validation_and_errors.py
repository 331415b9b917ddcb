"""Validation rules and modelled errors, raised as botocore's exception classes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import urllib3
from sandbox_testkit import ACCOUNT, by_interval, by_period, invoicing, utc

from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.runner import Sandbox


def _validation(call: Callable[[], Any]) -> dict[str, Any]:
    client = invoicing()
    with pytest.raises(client.exceptions.ValidationException) as caught:
        call()
    response: dict[str, Any] = caught.value.response
    return response


@pytest.fixture
def unchecked(sandbox: Sandbox) -> Any:
    """A client without botocore's own parameter validation, so the server's checks are reached."""
    return invoicing(parameter_validation=False)


@pytest.mark.parametrize("max_results", [0, 101])
def test_max_results_out_of_range(unchecked: Any, max_results: int) -> None:
    # Given a request whose MaxResults is outside 1..100
    # When the server receives it
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        unchecked.list_invoice_summaries(**by_period(2026, 9), MaxResults=max_results)
    # Then it names the field, with reason fieldValidationFailed
    response = caught.value.response
    assert response["reason"] == "fieldValidationFailed"
    assert [f["name"] for f in response["fieldList"]] == ["MaxResults"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"Selector": {"ResourceType": "ACCOUNT", "Value": ACCOUNT}}, "Selector.ResourceType"),
        ({"Selector": {"ResourceType": "ACCOUNT_ID"}}, "Selector.Value"),
        ({}, "Selector"),
        ({**by_period(2026, 13)}, "Filter.BillingPeriod.Month"),
        ({**by_period(2026, 9, ReceiverRole="OWNER")}, "Filter.ReceiverRole"),
    ],
)
def test_shape_violations_are_reported_per_field(
    unchecked: Any, request_body: dict[str, Any], field: str
) -> None:
    # Given a request that breaks the input shape (enum, required member, range)
    # When it is sent
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        unchecked.list_invoice_summaries(**request_body)
    # Then the fieldList names the offending member
    assert field in [f["name"] for f in caught.value.response["fieldList"]]


def test_account_listing_needs_a_period_or_interval(sandbox: Sandbox) -> None:
    # Given / When an ACCOUNT_ID listing without BillingPeriod or TimeInterval
    response = _validation(
        lambda: invoicing().list_invoice_summaries(Selector={"ResourceType": "ACCOUNT_ID", "Value": ACCOUNT})
    )
    # Then it is rejected
    assert response["fieldList"][0]["name"] == "Filter"


def test_billing_period_and_time_interval_are_mutually_exclusive(sandbox: Sandbox) -> None:
    # Given a filter with both BillingPeriod and TimeInterval
    request = by_period(2026, 9)
    request["Filter"]["TimeInterval"] = {"StartDate": utc(2026, 10, 1), "EndDate": utc(2026, 10, 20)}
    # When it is sent / Then reason mutualExclusionError
    assert (
        _validation(lambda: invoicing().list_invoice_summaries(**request))["reason"] == "mutualExclusionError"
    )


def test_start_must_be_before_end(sandbox: Sandbox) -> None:
    response = _validation(
        lambda: invoicing().list_invoice_summaries(**by_interval(utc(2026, 10, 2), utc(2026, 10, 1)))
    )
    assert "before" in response["Error"]["Message"]


@pytest.mark.parametrize(
    ("start", "end", "ok"),
    [
        (utc(2026, 9, 1), utc(2026, 10, 1), True),  # 30 days: September
        (utc(2026, 9, 1), utc(2026, 10, 1, 0, 0, 1), False),
        (utc(2026, 10, 1), utc(2026, 11, 1), True),  # 31 days: October
        (utc(2026, 2, 1), utc(2026, 3, 2), False),  # February has 28 days
    ],
)
def test_without_receiver_role_interval_lasts_at_most_a_month(
    sandbox: Sandbox, start: Any, end: Any, ok: bool
) -> None:
    # Given an interval of about a month, without ReceiverRole
    client = invoicing()
    # When listing / Then it is accepted only up to the days in the start month
    if ok:
        assert "InvoiceSummaries" in client.list_invoice_summaries(**by_interval(start, end))
    else:
        with pytest.raises(client.exceptions.ValidationException, match="cannot last more than a month"):
            client.list_invoice_summaries(**by_interval(start, end))


def test_with_receiver_role_interval_spans_up_to_five_years(sandbox: Sandbox) -> None:
    # Given ReceiverRole BUYER
    client = invoicing()
    # When the interval spans 18 months, or more than 5 years
    long = client.list_invoice_summaries(
        **by_interval(utc(2025, 6, 1), utc(2026, 12, 1), ReceiverRole="BUYER")
    )
    # Then 18 months is fine (and finds every BUYER invoice of the account) but 5 years and a day is not
    buyers = {
        i.invoice_id
        for i in sandbox.dataset.invoices
        if i.account_id == ACCOUNT and i.receiver_role == "BUYER"
    }
    assert {s["InvoiceId"] for s in long["InvoiceSummaries"]} == buyers
    with pytest.raises(client.exceptions.ValidationException, match="5 years"):
        client.list_invoice_summaries(**by_interval(utc(2025, 6, 1), utc(2030, 6, 2), ReceiverRole="BUYER"))


@pytest.mark.parametrize(
    "request_body",
    [
        by_period(2025, 5, ReceiverRole="SELLER"),
        by_interval(utc(2025, 5, 31), utc(2025, 6, 30), ReceiverRole="SELLER"),
    ],
)
def test_receiver_role_data_starts_2025_06(sandbox: Sandbox, request_body: dict[str, Any]) -> None:
    # Given / When a ReceiverRole query for a period before 2025-06 / Then ValidationException
    assert "2025-06-01" in _validation(lambda: invoicing().list_invoice_summaries(**request_body))["message"]


def test_receiver_role_from_2025_06_is_accepted(sandbox: Sandbox) -> None:
    page = invoicing().list_invoice_summaries(**by_period(2025, 6, ReceiverRole="SELLER"))
    assert page["InvoiceSummaries"] == []


def test_tampered_or_foreign_next_token_is_rejected(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given a NextToken from one query
    make_sandbox(
        generate(seed=3, accounts=[ACCOUNT], periods=[(2026, 9), (2026, 10)], invoices_per_account_period=5)
    )
    client = invoicing()
    token = client.list_invoice_summaries(**by_period(2026, 9), MaxResults=2)["NextToken"]
    # When it is altered, or used for another query
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    bad = _validation(lambda: client.list_invoice_summaries(**by_period(2026, 9), NextToken=tampered))
    foreign = _validation(lambda: client.list_invoice_summaries(**by_period(2026, 10), NextToken=token))
    # Then both fail with reason invalidNextToken, while the right query still accepts it
    assert bad["reason"] == foreign["reason"] == "invalidNextToken"
    assert client.list_invoice_summaries(**by_period(2026, 9), NextToken=token)["InvoiceSummaries"]


def test_unknown_invoice_is_resource_not_found(sandbox: Sandbox) -> None:
    client = invoicing()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.get_invoice_pdf(InvoiceId="0000000000")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert caught.value.response["resourceName"].startswith("arn:aws:invoicing::")


def test_flagged_invoice_is_access_denied(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given a dataset where every invoice is flagged access-denied
    box = make_sandbox(generate(seed=1, invoices_per_account_period=1, access_denied_rate=1.0))
    client = invoicing()
    # When GetInvoicePDF is called / Then AccessDeniedException (HTTP 403)
    with pytest.raises(client.exceptions.AccessDeniedException) as caught:
        client.get_invoice_pdf(InvoiceId=box.dataset.invoices[0].invoice_id)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def _post(url: str, target: str, body: Any, authorization: str | None = "sigv4") -> urllib3.BaseHTTPResponse:
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target}
    if authorization == "sigv4":
        authorization = (
            "AWS4-HMAC-SHA256 Credential=testing/20261123/us-east-1/invoicing/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
        )
    if authorization:
        headers["Authorization"] = authorization
    return urllib3.request("POST", url + "/", body=json.dumps(body).encode(), headers=headers)


def test_unknown_and_unsupported_operations(sandbox: Sandbox) -> None:
    # Given an operation botocore knows but the emulator does not serve, and a made-up target
    client = invoicing()
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.get_invoice_unit(InvoiceUnitArn="arn:aws:invoicing::123456789012:invoice-unit/abcd1234")
    raw = _post(str(sandbox.invoicing_url), "Invoicing.Nope", {})
    # Then both answer UnknownOperationException with HTTP 400
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"
    assert raw.status == 400
    assert raw.json()["__type"].endswith("#UnknownOperationException")


def test_requests_need_a_sigv4_authorization_header(sandbox: Sandbox) -> None:
    # Given requests without Authorization, or with a non-SigV4 one, or with a valid-looking one
    missing = _post(str(sandbox.invoicing_url), "Invoicing.GetInvoicePDF", {"InvoiceId": "x"}, None)
    basic = _post(str(sandbox.invoicing_url), "Invoicing.GetInvoicePDF", {"InvoiceId": "x"}, "Basic dXNlcg==")
    good = _post(str(sandbox.invoicing_url), "Invoicing.GetInvoicePDF", {"InvoiceId": "x"})
    # Then only the last reaches the operation (which answers 404 for the unknown invoice)
    assert (missing.status, missing.json()["__type"].rsplit("#")[-1]) == (
        400,
        "MissingAuthenticationTokenException",
    )
    assert (basic.status, basic.json()["__type"].rsplit("#")[-1]) == (400, "IncompleteSignatureException")
    assert good.status == 404
    assert good.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"


def test_unparseable_body_and_wrong_types(sandbox: Sandbox) -> None:
    # Given a timestamp sent as a string and a body that is not an object
    wrong_type = _post(
        str(sandbox.invoicing_url),
        "Invoicing.ListInvoiceSummaries",
        {**by_period(2026, 9), "Filter": {"TimeInterval": {"StartDate": "yesterday", "EndDate": 1}}},
    )
    not_object = _post(str(sandbox.invoicing_url), "Invoicing.ListInvoiceSummaries", [1, 2])
    # Then both are ValidationException with reason cannotParse
    assert wrong_type.status == not_object.status == 400
    assert wrong_type.json()["reason"] == not_object.json()["reason"] == "cannotParse"
