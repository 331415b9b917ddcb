"""`invoice-archiver verify` through the console script, on an archive the pipeline wrote on the sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from invoice_archiver.sandbox.dataset import generate
from tests.cli.conftest import BUCKET, Local, invoices_of


@pytest.fixture
def archived(local: Local) -> Local:
    """September and October archived by a backfill."""
    result = local.cli("backfill", "--from", "2026-09", "--to", "2026-10")
    assert result.returncode == 0, result.stdout + result.stderr
    return local


def test_verify_reads_every_object_of_a_clean_archive_and_exits_0(archived: Local) -> None:
    # Given a clean archive of two months
    invoices = invoices_of(archived.dataset, (2026, 9), (2026, 10))
    objects = len(archived.object_keys())

    # When it is verified, as text and as JSON
    text = archived.cli("verify")
    as_json = archived.cli("verify", "--json")

    # Then every object was read and compared, S3's checksum included, and nothing is wrong
    assert text.returncode == 0, text.stdout + text.stderr
    assert "No problems" in text.stdout
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 0
    assert report["clean"] is True
    assert report["problems"] == []
    assert report["invoices"] == len(invoices)
    assert report["objects"] == objects
    assert report["s3_checksums_compared"] == objects
    assert f"verifying: {objects}/{objects} objects" in text.stderr


def test_verify_names_an_overwritten_and_a_deleted_object_and_exits_1(archived: Local) -> None:
    # Given one invoice PDF replaced behind the archiver's back and another document deleted
    s3 = archived.client("s3")
    ledger = archived.ledger()
    first, second = (ledger[i.invoice_id] for i in invoices_of(archived.dataset, (2026, 9))[:2])
    overwritten = next(d["key"] for d in first["documents"] if d["document_type"] == "INVOICE")
    deleted = next(d["key"] for d in second["documents"] if d["document_type"] == "INVOICE")
    s3.put_object(Bucket=BUCKET, Key=overwritten, Body=b"%PDF-1.7 not the invoice AWS issued")
    s3.delete_object(Bucket=BUCKET, Key=deleted)

    # When the archive is verified
    text = archived.cli("verify")
    as_json = archived.cli("verify", "--json")

    # Then both are named with their keys, and the exit code is 1
    assert text.returncode == 1, text.stdout + text.stderr
    assert as_json.returncode == 1
    problems = {(p["kind"], p["key"]) for p in json.loads(as_json.stdout)["problems"]}
    assert problems == {("overwritten", overwritten), ("differs", overwritten), ("missing", deleted)}
    lines = text.stdout.splitlines()
    assert any(line.split()[:2] == ["overwritten", overwritten] for line in lines)
    assert any(line.split()[:2] == ["missing", deleted] and "delete marker" in line for line in lines)


def test_verify_finds_objects_of_no_invoice_and_folders_without_summary(archived: Local) -> None:
    # Given a stray object in a period folder, and an invoice folder nobody finished
    s3 = archived.client("s3")
    stray = "invoices/account=123456789012/period=2026-09/notes.txt"
    unfinished = "invoices/account=123456789012/period=2026-09/E-UNKNOWN/invoice.pdf"
    s3.put_object(Bucket=BUCKET, Key=stray, Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=unfinished, Body=b"%PDF")
    summary = next(k for k in archived.object_keys() if k.endswith("summary.json") and "period=2026-10" in k)
    s3.delete_object(Bucket=BUCKET, Key=summary)

    # When only September and October of that account are verified
    result = archived.cli("verify", "--account", "123456789012", "--json")

    # Then each is reported with its key
    assert result.returncode == 1
    problems = {(p["kind"], p["key"]) for p in json.loads(result.stdout)["problems"]}
    assert problems == {("orphan", stray), ("orphan", unfinished), ("no-summary", summary)}


def test_verify_compares_the_composite_checksum_of_a_multipart_upload(
    make_local: Callable[..., Local],
) -> None:
    # Given an invoice whose 6 MiB PDF went up as a multipart upload (threshold 5 MiB)
    dataset = generate(
        seed=4,
        accounts=("123456789012",),
        periods=((2026, 10),),
        invoices_per_account_period=1,
        document_size=6 * 1024 * 1024,
        supplemental=(0, 0),
    )
    local = make_local(dataset)
    env = {"MULTIPART_THRESHOLD_BYTES": str(5 * 1024 * 1024)}
    assert local.cli("backfill", "--from", "2026-10", "--to", "2026-10", **env).returncode == 0

    # When it is verified
    result = local.cli("verify", "--json")

    # Then the object's bytes match S3's composite SHA-256 checksum (and everything else)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report
    assert report["objects"] == 2
    assert report["s3_checksums_compared"] == 2
    assert report["bytes"] > 6 * 1024 * 1024
