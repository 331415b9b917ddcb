"""Listing: pagination returns every invoice exactly once; every response matches botocore's shapes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sandbox_testkit import ACCOUNT, RawBodies, by_interval, by_period, invoicing, utc

from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.runner import Sandbox
from invoice_archiver.sandbox.service import wire_summary
from invoice_archiver.sandbox.shapes import validate_output

BIG = generate(
    seed=11, accounts=[ACCOUNT], periods=[(2026, 9)], invoices_per_account_period=1050, document_size=1024
)


@pytest.mark.parametrize("page_size", [1, 7, 100])
def test_paginator_returns_each_invoice_exactly_once(
    make_sandbox: Callable[..., Sandbox], page_size: int
) -> None:
    # Given a sandbox holding 1,050 invoices of one account and one billing period
    make_sandbox(BIG)
    client = invoicing()
    # When the boto3 paginator walks the period with MaxResults = page_size
    pages = client.get_paginator("list_invoice_summaries").paginate(
        **by_period(2026, 9), PaginationConfig={"PageSize": page_size}
    )
    ids = [s["InvoiceId"] for page in pages for s in page["InvoiceSummaries"]]
    # Then every invoice comes back once, and no page is larger than asked
    assert len(ids) == len(set(ids)) == BIG.invoice_count
    assert set(ids) == {inv.invoice_id for inv in BIG.invoices}


def test_default_page_size_is_100_and_summaries_equal_dataset(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given the big dataset
    make_sandbox(BIG)
    # When one page is requested without MaxResults
    page = invoicing().list_invoice_summaries(**by_period(2026, 9))
    # Then it holds 100 summaries, equal to the dataset's records as boto3 parses them
    assert len(page["InvoiceSummaries"]) == 100
    assert "NextToken" in page
    for summary in page["InvoiceSummaries"]:
        assert summary == BIG.invoice(summary["InvoiceId"]).summary


def test_every_response_validates_against_botocore_output_shapes(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    # Given 1,080 invoices with supplemental documents and awkward ids, over 3 accounts and 3 periods
    dataset = generate(seed=5, invoices_per_account_period=120, awkward_ids=True, document_size=1024)
    make_sandbox(dataset)
    client = invoicing()
    raw = RawBodies(client)
    # When every page of every account/period is listed and GetInvoicePDF is called for every invoice
    listed = []
    for account in dataset.accounts:
        for year, month in dataset.periods:
            for page in client.get_paginator("list_invoice_summaries").paginate(
                **by_period(year, month, account)
            ):
                listed += [s["InvoiceId"] for s in page["InvoiceSummaries"]]
    for invoice_id in listed:
        client.get_invoice_pdf(InvoiceId=invoice_id)
    # Then all 1,080 invoices were seen and every raw body satisfies botocore's output shape
    assert sorted(listed) == sorted(inv.invoice_id for inv in dataset.invoices)
    assert len(raw.bodies) > dataset.invoice_count
    for operation, body in raw.bodies:
        assert validate_output(operation, body) == [], (operation, body)


def test_shape_validator_catches_a_broken_summary() -> None:
    # Given a wire summary with a bad enum, a float amount and a missing required member
    summary = wire_summary(BIG.invoices[0])
    summary["InvoiceType"] = "BILL"
    summary["BaseCurrencyAmount"]["TotalAmount"] = 1.5
    # When validated
    problems = validate_output("ListInvoiceSummaries", {"InvoiceSummaries": [summary]})
    missing = validate_output("ListInvoiceSummaries", {})
    # Then each violation is reported with its path
    assert {p.path for p in problems} == {
        "InvoiceSummaries[0].InvoiceType",
        "InvoiceSummaries[0].BaseCurrencyAmount.TotalAmount",
    }
    assert [p.path for p in missing] == ["InvoiceSummaries"]


def test_time_interval_selects_by_issued_date_and_billing_period_by_month(sandbox: Sandbox) -> None:
    # Given invoices for 2026-09, all issued in October 2026
    client = invoicing()
    september = {
        inv.invoice_id
        for inv in sandbox.dataset.invoices
        if inv.account_id == ACCOUNT and inv.billing_period == (2026, 9)
    }
    # When listing by BillingPeriod 2026-09 and by the October issue-date window
    by_month = client.list_invoice_summaries(**by_period(2026, 9))["InvoiceSummaries"]
    by_issue = client.list_invoice_summaries(**by_interval(utc(2026, 10, 1), utc(2026, 11, 1)))[
        "InvoiceSummaries"
    ]
    before = client.list_invoice_summaries(**by_interval(utc(2026, 9, 1), utc(2026, 10, 1)))[
        "InvoiceSummaries"
    ]
    # Then both find the same September invoices, and the September issue window finds the August ones
    assert {s["InvoiceId"] for s in by_month} == september
    assert {s["InvoiceId"] for s in by_issue} == september
    assert all(s["BillingPeriod"] == {"Year": 2026, "Month": 8} for s in before)


def test_time_interval_start_inclusive_end_exclusive(sandbox: Sandbox) -> None:
    # Given one invoice and its exact issue time
    client = invoicing()
    inv = next(i for i in sandbox.dataset.invoices if i.account_id == ACCOUNT)
    issued = inv.issued_date
    # When the window starts exactly at, or ends exactly at, the issue time
    starting = client.list_invoice_summaries(**by_interval(issued, issued.replace(day=28)))[
        "InvoiceSummaries"
    ]
    ending = client.list_invoice_summaries(**by_interval(issued.replace(day=1, hour=0), issued))[
        "InvoiceSummaries"
    ]
    # Then the start is inclusive and the end exclusive
    assert inv.invoice_id in {s["InvoiceId"] for s in starting}
    assert inv.invoice_id not in {s["InvoiceId"] for s in ending}


def test_filters_by_receiver_role_entity_and_invoice_id(sandbox: Sandbox) -> None:
    # Given the small dataset
    client = invoicing()
    inv = next(
        i for i in sandbox.dataset.invoices if i.account_id == ACCOUNT and i.billing_period == (2026, 10)
    )
    # When filtering on its role, its entity, and selecting its id
    roles = client.list_invoice_summaries(**by_period(2026, 10, ReceiverRole=inv.receiver_role))
    entity = client.list_invoice_summaries(**by_period(2026, 10, InvoicingEntity=inv.invoicing_entity))
    single = client.list_invoice_summaries(Selector={"ResourceType": "INVOICE_ID", "Value": inv.invoice_id})
    # Then only matching invoices are returned
    assert inv.invoice_id in {s["InvoiceId"] for s in roles["InvoiceSummaries"]}
    assert {s["ReceiverRole"] for s in roles["InvoiceSummaries"]} == {inv.receiver_role}
    assert {s["Entity"]["InvoicingEntity"] for s in entity["InvoiceSummaries"]} == {inv.invoicing_entity}
    assert [s["InvoiceId"] for s in single["InvoiceSummaries"]] == [inv.invoice_id]
