"""Documents: valid PDFs and XML, deterministic, streamed flat; pre-signed URLs expire, resist tampering."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pypdf
import pytest
import urllib3
from sandbox_testkit import invoicing

from invoice_archiver.sandbox.dataset import AWKWARD_IDS, generate
from invoice_archiver.sandbox.documents import (
    Document,
    document_bytes,
    document_length,
    document_sha256,
    document_stream,
)
from invoice_archiver.sandbox.runner import Sandbox


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _get(url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
    return urllib3.request("GET", url, retries=False, **kwargs)


def test_invoice_and_supplemental_documents_download_and_open(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given invoices with all four supplemental types, TAX_E_INVOICE as XML
    box = make_sandbox(
        generate(seed=2, invoices_per_account_period=2, supplemental=(4, 4), xml_e_invoice_rate=1.0)
    )
    inv = box.dataset.invoices[0]
    # When GetInvoicePDF is called and every URL fetched twice
    pdf = invoicing().get_invoice_pdf(InvoiceId=inv.invoice_id)["InvoicePDF"]
    docs = [("INVOICE", pdf["DocumentUrl"])] + [
        (d["DocumentType"], d["DocumentUrl"]) for d in pdf["SupplementalDocuments"]
    ]
    # Then each is byte-identical across fetches and equal to the generator's bytes, with S3-like headers
    assert sorted(t for t, _ in docs) == sorted(
        ["INVOICE", "GOVERNMENT_INVOICE", "TAX_E_INVOICE", "PAYMENT_RECEIPT", "SUPPLEMENT"]
    )
    for (kind, url), doc in zip(docs, inv.documents, strict=True):
        first, second = _get(url), _get(url)
        assert first.status == 200
        assert first.data == second.data == document_bytes(doc)
        assert first.headers["Content-Length"] == str(len(first.data))
        assert first.headers["ETag"] == second.headers["ETag"]
        if kind == "TAX_E_INVOICE":
            assert first.headers["Content-Type"] == "application/xml"
            assert inv.invoice_id.encode() in first.data
        else:
            assert first.headers["Content-Type"] == "application/pdf"
            text = pypdf.PdfReader(io.BytesIO(first.data)).pages[0].extract_text()
            assert inv.invoice_id in text
            assert kind in text
    assert box.emulator is not None
    assert box.emulator.stats.downloads == 10


def test_expiration_date_is_the_real_expiry(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given a sandbox on a controllable clock and a 60 s URL lifetime
    clock = Clock()
    box = make_sandbox(url_lifetime_seconds=60, clock=clock)
    pdf = invoicing().get_invoice_pdf(InvoiceId=box.dataset.invoices[0].invoice_id)["InvoicePDF"]
    # When the clock is just before, then at, the stated expiry
    assert pdf["DocumentUrlExpirationDate"] == clock.now + timedelta(seconds=60)
    clock.now += timedelta(seconds=59)
    before = _get(pdf["DocumentUrl"])
    clock.now += timedelta(seconds=1)
    after = _get(pdf["DocumentUrl"])
    # Then the URL works before and answers 403 "Request has expired" in S3's XML after
    assert before.status == 200
    assert after.status == 403
    assert after.headers["Content-Type"] == "application/xml"
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in after.data


def _tamper(url: str, what: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    path = parts.path
    if what == "signature":
        query["X-Amz-Signature"] = ("1" if query["X-Amz-Signature"][0] != "1" else "2") + query[
            "X-Amz-Signature"
        ][1:]
    elif what == "expiry":
        query["X-Amz-Expires"] = "999999"
    elif what == "date":
        query["X-Amz-Date"] = "20991231T000000Z"
    elif what == "path":
        path = path.rsplit("/", 1)[0] + "/other"
    return parts._replace(path=path, query=urlencode(query)).geturl()


@pytest.mark.parametrize("what", ["signature", "expiry", "date", "path"])
def test_tampered_urls_are_refused(sandbox: Sandbox, what: str) -> None:
    # Given a valid pre-signed URL
    url = invoicing().get_invoice_pdf(InvoiceId=sandbox.dataset.invoices[0].invoice_id)["InvoicePDF"][
        "DocumentUrl"
    ]
    # When one part of it is changed
    response = _get(_tamper(url, what))
    # Then S3-style 403 XML, and the untouched URL still works
    assert response.status == 403
    assert response.headers["Content-Type"] == "application/xml"
    assert b"<Code>SignatureDoesNotMatch</Code>" in response.data
    assert _get(url).status == 200


def test_awkward_invoice_ids_are_served_on_safe_paths(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given invoice ids with '/', '..', spaces and unicode
    box = make_sandbox(
        generate(
            seed=4,
            accounts=["123456789012"],
            periods=[(2026, 9)],
            invoices_per_account_period=10,
            awkward_ids=True,
        )
    )
    awkward = [i for i in box.dataset.invoices if i.invoice_id.startswith(AWKWARD_IDS)]
    client = invoicing()
    # When each is fetched through GetInvoicePDF and its URL
    for inv in awkward:
        url = client.get_invoice_pdf(InvoiceId=inv.invoice_id)["InvoicePDF"]["DocumentUrl"]
        # Then the path is one percent-encoded segment per id and the bytes are the invoice's
        assert "/../" not in url
        assert "/documents/" in url
        assert _get(url).data == document_bytes(inv.document)
    assert len(awkward) == 2


def test_range_requests(sandbox: Sandbox) -> None:
    inv = sandbox.dataset.invoices[0]
    url = invoicing().get_invoice_pdf(InvoiceId=inv.invoice_id)["InvoicePDF"]["DocumentUrl"]
    response = _get(url, headers={"Range": "bytes=100-199"})
    assert response.status == 206
    assert response.data == document_bytes(inv.document)[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{document_length(inv.document)}"


def test_documents_are_deterministic_and_sized() -> None:
    # Given the same document identity twice, and a different one
    doc = Document("INV-1", "INV-1", size=50_000)
    # Then bytes and hashes match, sizes are exact, and another id changes the bytes
    assert document_bytes(doc) == document_bytes(Document("INV-1", "INV-1", size=50_000))
    assert len(document_bytes(doc)) == document_length(doc) == 50_000
    assert document_sha256(doc) != document_sha256(Document("INV-2", "INV-2", size=50_000))
    assert pypdf.PdfReader(io.BytesIO(document_bytes(doc)), strict=True).pages[0].extract_text()


def test_large_document_streams_with_flat_memory() -> None:
    # Given a 200 MB document
    doc = Document("BIG-1", "BIG-1", size=200 * 1024 * 1024)
    # When it is streamed end to end under tracemalloc
    tracemalloc.start()
    try:
        total = sum(len(chunk) for chunk in document_stream(doc))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then all bytes arrive and the peak stays a few MiB (the 1 MiB filler block plus chunks)
    assert total == document_length(doc) == 200 * 1024 * 1024
    assert peak < 8 * 1024 * 1024


def test_large_document_download_over_http(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given an invoice whose PDF is 64 MiB
    box = make_sandbox(
        generate(
            seed=9,
            accounts=["123456789012"],
            periods=[(2026, 9)],
            invoices_per_account_period=1,
            document_size=64 << 20,
            supplemental=(0, 0),
        )
    )
    inv = box.dataset.invoices[0]
    url = invoicing().get_invoice_pdf(InvoiceId=inv.invoice_id)["InvoicePDF"]["DocumentUrl"]
    # When it is downloaded in a stream
    response = urllib3.request("GET", url, preload_content=False)
    size = sum(len(chunk) for chunk in response.stream(1 << 20))
    # Then the full Content-Length arrives
    assert size == int(response.headers["Content-Length"]) == 64 << 20


def test_issued_urls_and_signatures_are_recorded(sandbox: Sandbox) -> None:
    # Given / When a GetInvoicePDF call
    pdf = invoicing().get_invoice_pdf(InvoiceId=sandbox.dataset.invoices[0].invoice_id)["InvoicePDF"]
    # Then its URL and signature are recorded, so tests can grep logs for leaks
    assert sandbox.emulator is not None
    assert pdf["DocumentUrl"] in sandbox.emulator.issued_urls
    signature = dict(parse_qsl(urlsplit(pdf["DocumentUrl"]).query))["X-Amz-Signature"]
    assert signature in sandbox.emulator.issued_signatures


def test_every_pdf_size_is_laid_out_exactly() -> None:
    # Given every size across the /Length digit-count boundaries (99 -> 100, 999 -> 1000, 9999 -> 10000)
    # When a PDF of that size is generated
    # Then it has exactly that many bytes (a size whose /Length width oscillated once crashed the server)
    from invoice_archiver.sandbox.documents import Document, document_length, document_stream

    for size in range(2000, 12_500):
        doc = Document(invoice_id="I-1", document_id="D-1", size=size)
        assert document_length(doc) == size
        assert sum(len(chunk) for chunk in document_stream(doc)) == size
