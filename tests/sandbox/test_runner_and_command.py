"""The Sandbox runner (environment, moto request log, clean stop) and the `sandbox` subcommand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from invoice_archiver.sandbox.dataset import Dataset, default_dataset, generate
from invoice_archiver.sandbox.runner import Sandbox
from tests.sandbox_banner import read_banner

ROOT = Path(__file__).resolve().parents[2]


def test_sandbox_sets_and_restores_the_environment(aws_credentials: None) -> None:
    # Given no endpoint configured
    threads_before = threading.active_count()
    # When a sandbox runs
    with Sandbox(generate(seed=1, invoices_per_account_period=1), use_existing_endpoints=False) as box:
        inside = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_INVOICING")}
        assert box.moto is not None
        assert box.emulator is not None
        assert inside == {"AWS_ENDPOINT_URL": box.moto.url, "AWS_ENDPOINT_URL_INVOICING": box.emulator.url}
        assert box.env["AWS_DEFAULT_REGION"] == "us-east-1"
    # Then both variables are gone afterwards and no server thread is left behind
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert "AWS_ENDPOINT_URL_INVOICING" not in os.environ
    assert threading.active_count() == threads_before


def test_existing_endpoint_is_reused_and_request_log_unavailable(
    aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given AWS_ENDPOINT_URL already points at another server (e.g. LocalStack)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    # When a sandbox starts
    with Sandbox(generate(seed=1, invoices_per_account_period=1)) as box:
        # Then it starts only the emulator and leaves AWS_ENDPOINT_URL alone
        assert box.moto is None
        assert box.moto_url == "http://127.0.0.1:4566"
        assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
        assert box.emulator is not None


def test_moto_request_log_counts_s3_puts(sandbox: Sandbox) -> None:
    # Given a bucket
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="archive")
    # When two objects are put and one is read
    s3.put_object(Bucket="archive", Key="a/1.pdf", Body=b"1")
    s3.put_object(Bucket="archive", Key="a/2.pdf", Body=b"2")
    s3.get_object(Bucket="archive", Key="a/1.pdf")
    boto3.client("sqs").create_queue(QueueName="jobs")
    # Then the log tells them apart
    assert sandbox.moto is not None
    log = sandbox.moto.requests
    assert log.count(service="s3", operation="PutObject") == 2
    assert log.count(service="s3", method="PUT") == 3
    assert [r.key for r in log.filter(service="s3", operation="GetObject")] == ["a/1.pdf"]
    assert log.count(service="sqs", operation="CreateQueue") == 1
    log.reset()
    assert len(log) == 0


def test_moto_state_is_fresh_per_sandbox(sandbox: Sandbox) -> None:
    # Given a fresh sandbox (a previous test created a bucket "archive")
    # Then moto holds no buckets
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_dataset_amounts_add_up_and_round_trip() -> None:
    # Given a generated dataset with all currencies
    dataset = generate(seed=3, invoices_per_account_period=30)
    for inv in dataset.invoices:
        for key in ("BaseCurrencyAmount", "PaymentCurrencyAmount", "TaxCurrencyAmount"):
            amount = inv.summary[key]
            parts = amount["AmountBreakdown"]
            places = 0 if amount["CurrencyCode"] == "JPY" else 2
            # Then SubTotal - discounts + fees = before tax; + taxes = total; with the currency's decimals
            subtotal, discounts, fees, taxes = (
                Decimal(parts["SubTotalAmount"]),
                Decimal(parts["Discounts"]["TotalAmount"]),
                Decimal(parts["Fees"]["TotalAmount"]),
                Decimal(parts["Taxes"]["TotalAmount"]),
            )
            assert subtotal - discounts + fees == Decimal(amount["TotalAmountBeforeTax"])
            assert Decimal(amount["TotalAmountBeforeTax"]) + taxes == Decimal(amount["TotalAmount"])
            assert -Decimal(amount["TotalAmount"]).as_tuple().exponent == places
        if inv.summary["InvoiceType"] == "CREDIT_MEMO":
            assert dataset.invoice(inv.summary["OriginalInvoiceId"]).account_id == inv.account_id
    # And the JSON scenario format round-trips exactly
    again = Dataset.from_json(dataset.to_json())
    assert [i.summary for i in again.invoices] == [i.summary for i in dataset.invoices]
    assert [i.documents for i in again.invoices] == [i.documents for i in dataset.invoices]
    kinds = {i.summary["InvoiceType"] for i in dataset.invoices}
    assert kinds == {"INVOICE", "CREDIT_MEMO", "PAYMENT_RECEIPT"}


def test_scenario_file_with_generator_and_explicit_invoice(tmp_path: Path) -> None:
    # Given a scenario mixing generator parameters and one explicit invoice
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        """{"format": "invoice-archiver-sandbox/1",
            "generate": {"seed": 1, "accounts": ["111122223333"], "periods": ["2026-09"],
                         "invoices_per_account_period": 3},
            "invoices": [{"summary": {"AccountId": "111122223333", "InvoiceId": "MY-1",
                          "IssuedDate": "2026-10-02T00:00:00Z", "BillingPeriod": {"Year": 2026, "Month": 9},
                          "InvoiceType": "INVOICE"},
                          "supplemental_documents": [{"DocumentType": "TAX_E_INVOICE", "DocumentId": "x1",
                                                      "format": "xml"}]}]}"""
    )
    # When it is loaded
    dataset = Dataset.load(scenario)
    # Then it holds both
    assert dataset.invoice_count == 4
    assert dataset.invoice("MY-1").supplemental[0].media_type == "xml"
    assert dataset.accounts == ["111122223333"]


def test_default_dataset_covers_the_last_three_complete_periods() -> None:
    from datetime import UTC, datetime

    dataset = default_dataset(datetime(2026, 11, 23, tzinfo=UTC))
    assert dataset.periods == [(2026, 8), (2026, 9), (2026, 10)]
    assert "123456789012" in dataset.accounts
    assert len(dataset.accounts) == 3
    assert dataset.invoice_count >= 3 * 3 * 70
    assert {i.receiver_role for i in dataset.invoices} == {"SELLER", "RESELLER", "BUYER"}


CLIENT_SCRIPT = textwrap.dedent(
    """
    import boto3, urllib3
    client = boto3.client("invoicing")
    pages = client.get_paginator("list_invoice_summaries").paginate(
        Selector={"ResourceType": "ACCOUNT_ID", "Value": "123456789012"},
        Filter={"BillingPeriod": {"Year": 2026, "Month": 9}},
        PaginationConfig={"PageSize": 2},
    )
    ids = [s["InvoiceId"] for p in pages for s in p["InvoiceSummaries"]]
    url = client.get_invoice_pdf(InvoiceId=ids[0])["InvoicePDF"]["DocumentUrl"]
    body = urllib3.request("GET", url).data
    print(len(ids), body[:5].decode())
    """
)


def test_sandbox_subcommand_serves_a_plain_boto3_script(tmp_path: Path) -> None:
    # Given `python -m invoice_archiver.sandbox` running in a subprocess with a small generated dataset
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoice_archiver.sandbox", "--seed", "5", "--accounts", "123456789012",
         "--periods", "2026-09,2026-10", "--invoices-per-period", "5", "--document-size", "4096"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = read_banner(proc.stdout)
        # When a plain boto3 script runs with only the exported variables
        exported = banner.exports
        script = subprocess.run(
            [sys.executable, "-c", CLIENT_SCRIPT],
            env={**env, **exported},
            capture_output=True,
            text=True,
            timeout=60,
        )
        # Then it lists the 5 invoices page by page and downloads a PDF
        assert script.returncode == 0, script.stderr
        assert script.stdout.split() == ["5", "%PDF-"]
        assert set(exported) >= {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_INVOICING", "AWS_ACCESS_KEY_ID"}
        assert any("10 invoices" in line for line in banner.lines)
    finally:
        # And SIGINT stops it cleanly with exit code 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0


def test_cli_main_wires_the_sandbox_subcommand() -> None:
    # Given the project's console script parser (skipped until its other subcommands exist)
    pytest.importorskip("invoice_archiver.cli.run_local")
    from invoice_archiver.cli.main import build_parser

    # When the sandbox subcommand is parsed / Then it dispatches to sandbox.command.run
    from invoice_archiver.sandbox.command import run

    args = build_parser().parse_args(["sandbox", "--seed", "3", "--throttle-rate", "0.1"])
    assert args.run is run
    assert (args.seed, args.throttle_rate) == (3, 0.1)
