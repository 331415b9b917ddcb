"""Deterministic invoice documents: valid PDFs of any size, streamed, and small XML e-invoices.

A PDF is laid out as ``prefix | filler | suffix``. The prefix holds the catalog, the page and the
text content; the filler is an unreferenced stream object padded to the requested size; the suffix
holds the cross-reference table. All offsets are computed arithmetically, so the exact length is known
up front and any byte range can be produced without building the document in memory.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from xml.sax.saxutils import escape

MediaType = Literal["pdf", "xml"]
CONTENT_TYPES: dict[str, str] = {"pdf": "application/pdf", "xml": "application/xml"}
FILLER_BLOCK_SIZE = 1 << 20
DEFAULT_CHUNK_SIZE = 1 << 16
MIN_PDF_SIZE = 1024


@dataclass(frozen=True)
class Document:
    """One downloadable document of an invoice: the invoice PDF itself or a supplemental document.

    ``document_type`` is ``INVOICE`` for the main document, else a ``SupplementalDocumentType``.
    ``size`` is the requested size of a PDF (never below ``MIN_PDF_SIZE``); XML documents ignore it.
    ``omitted`` names the members (``DocumentType``, ``DocumentId``) GetInvoicePDF leaves out for it.
    """

    invoice_id: str
    document_id: str
    document_type: str = "INVOICE"
    size: int = 8192
    media_type: MediaType = "pdf"
    omitted: tuple[str, ...] = ()

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.media_type]


def document_length(doc: Document) -> int:
    """The exact number of bytes `document_stream` yields."""
    if doc.media_type == "xml":
        return len(_xml(doc))
    prefix, filler_len, suffix = _pdf_layout(doc)
    return len(prefix) + filler_len + len(suffix)


def document_stream(
    doc: Document, start: int = 0, stop: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """Yield the bytes ``[start, stop)`` of the document in chunks of at most ``chunk_size`` bytes."""
    total = document_length(doc)
    stop = total if stop is None else min(stop, total)
    if doc.media_type == "xml":
        data = _xml(doc)[start:stop]
        for at in range(0, len(data), chunk_size):
            yield data[at : at + chunk_size]
        return
    prefix, filler_len, suffix = _pdf_layout(doc)
    block = _filler_block(doc.invoice_id, doc.document_id, min(filler_len, FILLER_BLOCK_SIZE))
    pos = start
    while pos < stop:
        if pos < len(prefix):
            piece = prefix[pos : min(stop, len(prefix))]
        elif pos < len(prefix) + filler_len:
            offset = (pos - len(prefix)) % len(block)
            end = min(stop, len(prefix) + filler_len)
            piece = block[offset : offset + min(end - pos, chunk_size, len(block) - offset)]
        else:
            base = len(prefix) + filler_len
            piece = suffix[pos - base : stop - base]
        piece = piece[:chunk_size]
        pos += len(piece)
        yield piece


def document_bytes(doc: Document) -> bytes:
    """The whole document in memory (for tests and small documents)."""
    return b"".join(document_stream(doc))


def document_sha256(doc: Document) -> str:
    """Hex SHA-256 of the document, computed over the stream (flat in memory)."""
    digest = hashlib.sha256()
    for chunk in document_stream(doc, chunk_size=FILLER_BLOCK_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


def document_etag(doc: Document) -> str:
    """A stable, quoted ETag derived from the document identity (cheap even for huge documents)."""
    key = f"{doc.invoice_id}\0{doc.document_id}\0{doc.document_type}\0{doc.size}\0{doc.media_type}"
    return '"' + hashlib.md5(key.encode(), usedforsecurity=False).hexdigest() + '"'


# --- PDF -----------------------------------------------------------------------------------------


def _pdf_text(value: str) -> str:
    """A PDF literal string body: escape delimiters; Latin-1 as octal escapes, anything else as '?'."""
    out = []
    for char in value:
        if char in "()\\":
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        elif ord(char) < 256:
            out.append(f"\\{ord(char):03o}")
        else:
            out.append("?")
    return "".join(out)


def _content_stream(doc: Document) -> bytes:
    lines = [
        "AWS Invoicing sandbox document",
        f"Invoice ID: {doc.invoice_id}",
        f"Document ID: {doc.document_id}",
        f"Document type: {doc.document_type}",
    ]
    ops = ["BT", "/F1 12 Tf", "72 720 Td"]
    for line in lines:
        ops.append(f"({_pdf_text(line)}) Tj")
        ops.append("0 -18 Td")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def _objects(doc: Document) -> list[bytes]:
    content = _content_stream(doc)
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]


@lru_cache(maxsize=4096)
def _pdf_layout(doc: Document) -> tuple[bytes, int, bytes]:
    """(prefix, filler length, suffix) such that the three add up to max(doc.size, MIN_PDF_SIZE)."""
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    offsets: list[int] = []
    body = bytearray(head)
    for number, obj in enumerate(_objects(doc), start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    filler_offset = len(body)
    target = max(doc.size, MIN_PDF_SIZE)
    filler_len, pad = 0, 0
    for attempt in range(16):
        prefix = bytes(body) + b"6 0 obj\n<< /Length %d%s >>\nstream\n" % (filler_len, b" " * pad)
        suffix = _pdf_suffix([*offsets, filler_offset], len(prefix) + filler_len)
        gap = target - (len(prefix) + filler_len + len(suffix))
        if gap == 0:
            break
        if gap > 0 and attempt >= 4:
            pad += gap  # the /Length digit count oscillates: absorb the gap with whitespace instead
        else:
            filler_len += gap
    if len(prefix) + filler_len + len(suffix) != target:
        raise RuntimeError(f"cannot lay out a PDF of exactly {target} bytes")
    return prefix, filler_len, suffix


def _pdf_suffix(offsets: list[int], filler_end: int) -> bytes:
    xref_at = filler_end + len(b"\nendstream\nendobj\n")
    entries = b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return (
        b"\nendstream\nendobj\n"
        + b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
        + entries
        + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref_at)
    )


@lru_cache(maxsize=16)
def _filler_block(invoice_id: str, document_id: str, length: int) -> bytes:
    """Up to 1 MiB of printable bytes, unique per document; the filler repeats this block."""
    seed = f"{invoice_id}\0{document_id}".encode()
    raw = hashlib.shake_256(seed).digest((length + 3) // 4 * 3)
    return base64.b64encode(raw)[: max(length, 1)]


# --- XML -----------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _xml(doc: Document) -> bytes:
    digest = hashlib.sha256(f"{doc.invoice_id}\0{doc.document_id}".encode()).hexdigest()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
        'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">\n'
        "  <cbc:CustomizationID>urn:invoice-archiver:sandbox:e-invoice:1.0</cbc:CustomizationID>\n"
        f"  <cbc:ID>{escape(doc.invoice_id)}</cbc:ID>\n"
        f"  <cbc:UUID>{escape(doc.document_id)}</cbc:UUID>\n"
        f"  <cbc:Note>{escape(doc.document_type)}</cbc:Note>\n"
        f"  <cbc:Checksum>{digest}</cbc:Checksum>\n"
        "</Invoice>\n"
    ).encode()
