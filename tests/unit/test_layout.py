"""invoice_archiver.logic.layout: the S3 archive contract (keys, tags, user metadata)."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import pytest

from invoice_archiver.logic.layout import (
    MAX_METADATA_BYTES,
    MAX_TAG_VALUE,
    MAX_TAGS,
    ContractViolation,
    document_key,
    invoice_prefix,
    object_metadata,
    object_tags,
    parse_document_name,
    parse_key,
    revision_key,
    safe_segment,
    summary_key,
    tag_value,
    tagging_header,
    type_segment,
)
from invoice_archiver.models.period import BillingPeriod

from .factories import ACCOUNT, SummaryFactory

PERIOD = BillingPeriod(2025, 6)
SHA = "ab" * 32
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
S3_TAG_CHARSET = re.compile(r"^[\w .:/=+\-@]*$", re.ASCII)
S3_MAX_KEY_BYTES = 1024

AWKWARD_IDS = [
    "EUINGB25-123456",
    "a/b",
    "/leading",
    "trailing/",
    "..",
    ".",
    "../../etc/passwd",
    "a..b",
    "with space",
    "100%",
    "%2F",
    "%252F",
    "a%2Fb",
    "ü",
    "u\u0308",  # the same glyph as above, decomposed (NFD)
    "😀",
    "Facture n° 12/2025",
    "tab\there",
    "back\\slash",
    "question?mark#hash&amp=",
    "~tilde",
    "UPPER",
    "upper",
    "-",
    "_",
    "%",
    "%25",
]


def make_ids(count: int, seed: int = 20250601) -> list[str]:
    """Factory: many short ids drawn from an alphabet of path-significant, encoded and unicode characters."""
    alphabet = ["a", "B", "0", "-", "_", ".", "/", "%", "2", "F", "E", " ", "\\", "é", "e\u0301", "😀", "~"]
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(count)]


def metadata_bytes(metadata: dict[str, str]) -> int:
    return sum(len(key.encode("utf-8")) + len(value.encode("utf-8")) for key, value in metadata.items())


# --- safe_segment ---------------------------------------------------------------------------------


@pytest.mark.parametrize("invoice_id", AWKWARD_IDS)
def test_safe_segment_is_one_harmless_reversible_segment(invoice_id: str) -> None:
    # Given an id with path separators, dot segments, escapes or unicode
    # When made a segment
    segment = safe_segment(invoice_id)

    # Then it is one path segment that cannot climb, made of unreserved ASCII and escapes
    assert "/" not in segment
    assert segment not in {".", ".."}
    assert re.fullmatch(r"[A-Za-z0-9_\-%]+", segment)
    # and the id can be read back from it
    assert unquote(segment, errors="strict") == invoice_id


def test_safe_segment_examples() -> None:
    assert safe_segment("EUINGB25-123_456") == "EUINGB25-123_456"
    assert safe_segment("a/b") == "a%2Fb"
    assert safe_segment("..") == "%2E%2E"
    assert safe_segment("100%") == "100%25"
    assert safe_segment("a b") == "a%20b"
    assert safe_segment("ü") == "%C3%BC"
    assert safe_segment("😀") == "%F0%9F%98%80"


def test_safe_segment_is_injective() -> None:
    # Given the awkward ids and thousands of random ones
    ids = set(AWKWARD_IDS) | set(make_ids(5000))

    # When each is made a segment
    segments: dict[str, str] = {}
    for invoice_id in ids:
        segment = safe_segment(invoice_id)
        # Then no two different ids share a segment
        assert segments.setdefault(segment, invoice_id) == invoice_id, (invoice_id, segments[segment])
    assert len(segments) == len(ids)


def test_safe_segment_refuses_an_empty_id() -> None:
    with pytest.raises(ValueError, match="empty id"):
        safe_segment("")


# --- keys -----------------------------------------------------------------------------------------


def test_invoice_prefix_layout() -> None:
    assert (
        invoice_prefix("invoices", ACCOUNT, PERIOD, "EUINGB25-123456")
        == "invoices/account=123456789012/period=2025-06/EUINGB25-123456/"
    )
    assert (
        invoice_prefix("archive/aws", ACCOUNT, BillingPeriod(2024, 12), "../x")
        == "archive/aws/account=123456789012/period=2024-12/%2E%2E%2Fx/"
    )


@pytest.mark.parametrize(
    ("document_type", "document_id", "extension", "file_name"),
    [
        ("SUPPLEMENT", "doc-1", "pdf", "supplement.doc-1.pdf"),
        ("GOVERNMENT_INVOICE", "GI 7", "xml", "government-invoice.GI%207.xml"),
        ("TAX_E_INVOICE", "a/b", "zip", "tax-e-invoice.a%2Fb.zip"),
        ("PAYMENT_RECEIPT", "..", "bin", "payment-receipt.%2E%2E.bin"),
        # A type newer than this version is filed under the type the API sent, made path-safe
        ("NEW_KIND/2", "x", "pdf", "new-kind%2F2.x.pdf"),
        # ... even INVOICE: a supplemental document never lands on invoice.<ext>
        ("INVOICE", "x", "pdf", "invoice.x.pdf"),
        # What the API omitted is named as such and replaced by the content's SHA-256
        (None, "doc-1", "pdf", "untyped=doc-1.pdf"),
        ("TAX_E_INVOICE", None, "xml", f"tax-e-invoice.sha256={SHA}.xml"),
        (None, None, "pdf", f"untyped=sha256={SHA}.pdf"),
    ],
)
def test_document_key_layout(
    document_type: str | None, document_id: str | None, extension: str, file_name: str
) -> None:
    folder = invoice_prefix("invoices", ACCOUNT, PERIOD, "INV-1")
    key = document_key(folder, document_type, document_id, extension, SHA)
    assert key == f"invoices/account={ACCOUNT}/period=2025-06/INV-1/{file_name}"
    # And the name reads back as what it was made from
    named = parse_document_name(file_name)
    assert named is not None
    assert (named.primary, named.legacy, named.extension) == (False, False, extension)
    assert named.type_part == (type_segment(document_type) if document_type else None)
    assert named.id_part == (safe_segment(document_id) if document_id else f"sha256={SHA}")


def test_the_invoice_document_is_invoice_dot_ext_whatever_its_type() -> None:
    folder = invoice_prefix("invoices", ACCOUNT, PERIOD, "INV-1")
    assert document_key(folder, "INVOICE", "INV-1", "pdf", SHA, primary=True).endswith("/INV-1/invoice.pdf")
    named = parse_document_name("invoice.pdf")
    assert named is not None
    assert named.primary


def test_no_two_type_and_id_pairs_share_a_name() -> None:
    # Given the pair the old '-' separator confused, and every split of awkward type/id strings
    folder = invoice_prefix("invoices", ACCOUNT, PERIOD, "INV-1")
    assert document_key(folder, "GOVERNMENT_INVOICE", "X", "pdf", SHA) != document_key(
        folder, "GOVERNMENT", "invoice-X", "pdf", SHA
    )
    words = [
        "GOVERNMENT",
        "INVOICE",
        "GOVERNMENT_INVOICE",
        "TAX_E",
        "E_INVOICE",
        "X",
        "invoice-X",
        "a.b",
        "a",
    ]
    words += ["untyped", "untyped=", "sha256=", "-", ".", "%2E", "invoice", "x~y", "e" * 199, "e" * 260]
    pairs = {(t, i) for t in [*words, None] for i in [*words, None]}
    keys: dict[str, tuple[str | None, str | None]] = {}
    for kind, document_id in sorted(pairs, key=str):
        key = document_key(folder, kind, document_id, "pdf", SHA)
        # Then each distinct (type, id) has its own key (types differing only in case or '_'/'-'
        # are the same type to the archive: GetInvoicePDF's enum is upper case with '_')
        same_type = keys.get(key)
        assert same_type is None or (
            same_type[1] == document_id
            and (same_type[0] or "").lower().replace("_", "-") == (kind or "").lower().replace("_", "-")
        ), f"{(kind, document_id)} and {same_type} share {key}"
        keys[key] = (kind, document_id)
        # And none is the invoice document's
        assert not key.endswith("/invoice.pdf")


def test_names_from_before_the_separator_are_read_as_legacy() -> None:
    # Given names archived before 2026-12-04 (type and id joined by '-')
    for name in ("supplement-doc-1.pdf", f"tax-e-invoice-sha256={SHA}.xml", "government-invoice-GI%207.xml"):
        named = parse_document_name(name)
        # Then they read as legacy document names (kept as they are; the ledger names their type and id)
        assert named is not None
        assert named.legacy
    # And names that are no document's are not read as one
    for name in ("summary", "a..pdf", "x.y.z.pdf", "untyped=.pdf", ".pdf", "invoice."):
        assert parse_document_name(name) is None, name


def test_summary_key_layout() -> None:
    folder = invoice_prefix("invoices", ACCOUNT, PERIOD, "INV-1")
    assert summary_key(folder) == f"invoices/account={ACCOUNT}/period=2025-06/INV-1/summary.json"


def test_keys_stay_in_their_folder_for_any_ids() -> None:
    # Given awkward and random invoice and document ids
    ids = AWKWARD_IDS + make_ids(300, seed=7)
    for invoice_id in ids:
        folder = invoice_prefix("invoices", ACCOUNT, PERIOD, invoice_id)
        keys = [
            document_key(folder, "INVOICE", "x", "pdf", SHA, primary=True),
            summary_key(folder),
            *(document_key(folder, "SUPPLEMENT", document_id, "pdf", SHA) for document_id in AWKWARD_IDS),
        ]
        for key in keys:
            # Then every key has exactly the five layout segments, none of them a dot segment
            parts = key.split("/")
            assert parts[:3] == ["invoices", f"account={ACCOUNT}", "period=2025-06"]
            assert len(parts) == 5
            assert parts[3] == safe_segment(invoice_id)
            assert not {".", "..", ""} & set(parts)
        # And no document can overwrite invoice.pdf or summary.json
        assert len(set(keys)) == len(keys)


def test_keys_fit_s3_key_limit_or_raise_contract_violation() -> None:
    # Given a 1,000-character invoice id of 2-byte characters (9 bytes each once percent-encoded)
    invoice_id = "é" * 1000

    # When its keys are built, Then they fit S3's 1,024-byte limit, or ContractViolation says why
    try:
        folder = invoice_prefix("invoices", ACCOUNT, PERIOD, invoice_id)
        keys = [document_key(folder, "SUPPLEMENT", "d" * 200, "pdf", SHA), summary_key(folder)]
    except ContractViolation:
        return
    for key in keys:
        assert len(key.encode("utf-8")) <= S3_MAX_KEY_BYTES


# --- tags -----------------------------------------------------------------------------------------


def test_object_tags_for_a_typical_summary(make_summary: SummaryFactory) -> None:
    # Given a typical summary, When tagged for its invoice document
    tags = object_tags(make_summary(), "INVOICE")

    # Then these exact tags
    assert tags == {
        "account": ACCOUNT,
        "invoice-id": "EUINGB25-123456",
        "billing-period": "2025-06",
        "invoice-type": "INVOICE",
        "document-type": "INVOICE",
        "billing-entity": "AWS",
        "receiver-role": "BUYER",
        "bill-type": "ANNIVERSARY",
        "archiver": "invoice-archiver",
    }


def test_object_tags_leave_out_missing_values(make_summary: SummaryFactory) -> None:
    summary = make_summary(ReceiverRole=None, BillType="", Entity=None)
    tags = object_tags(summary, "SUMMARY")
    assert "receiver-role" not in tags
    assert "bill-type" not in tags
    assert "billing-entity" not in tags
    assert tags["document-type"] == "SUMMARY"
    assert tags["account"] == ACCOUNT


@pytest.mark.parametrize(
    "invoice_id",
    [*AWKWARD_IDS, "x" * 1000, "é" * 300, "😀" * 300, "a&b=c?d#e", "new\nline", "<script>", "quote\"'"],
)
def test_object_tags_obey_s3_tag_rules(make_summary: SummaryFactory, invoice_id: str) -> None:
    # Given hostile values in every tagged field
    summary = make_summary(
        InvoiceId=invoice_id,
        InvoiceType=invoice_id,
        BillType=invoice_id,
        ReceiverRole=invoice_id,
        Entity={"BillingEntity": invoice_id},
    )

    # When tagged
    tags = object_tags(summary, "SUPPLEMENT")

    # Then at most ten tags, every value in S3's charset and length, and the keys present
    assert len(tags) <= MAX_TAGS
    assert set(tags) >= {"account", "invoice-id", "billing-period", "document-type", "archiver"}
    for key, value in tags.items():
        assert S3_TAG_CHARSET.match(key), key
        assert len(key) <= 128
        assert S3_TAG_CHARSET.match(value), (key, value)
        assert len(value) <= MAX_TAG_VALUE == 256


def test_tag_value_replaces_unsafe_characters_and_truncates() -> None:
    assert tag_value("a&b/c:d=e+f-g@h.i_j k") == "a_b/c:d=e+f-g@h.i_j k"
    assert tag_value("é😀") == "__"
    assert tag_value(2025) == "2025"
    assert len(tag_value("x" * 1000)) == 256


def test_tagging_header_round_trips(make_summary: SummaryFactory) -> None:
    # Given tags with spaces, slashes and '=' in values
    tags = object_tags(make_summary(InvoiceId="a b/c=d+e"), "INVOICE")

    # When rendered as the x-amz-tagging header and parsed back, Then nothing changes
    header = tagging_header(tags)
    assert dict(parse_qsl(header, keep_blank_values=True, strict_parsing=True)) == tags
    assert " " not in header


# --- metadata -------------------------------------------------------------------------------------


def json_summary(make_summary: SummaryFactory, **overrides: Any) -> dict[str, Any]:
    """The summary as it travels in the message: JSON-safe strings instead of datetimes."""
    return make_summary(IssuedDate="2025-07-02T09:30:00+00:00", **overrides)


def test_object_metadata_for_a_typical_summary(make_summary: SummaryFactory) -> None:
    metadata = object_metadata(json_summary(make_summary), "SUPPLEMENT", "doc-1", 12345, SHA256)
    assert metadata == {
        "account-id": ACCOUNT,
        "invoice-id": "EUINGB25-123456",
        "billing-period": "2025-06",
        "invoice-type": "INVOICE",
        "issued-date": "2025-07-02T09:30:00+00:00",
        "receiver-role": "BUYER",
        "document-type": "SUPPLEMENT",
        "document-id": "doc-1",
        "size": "12345",
        "sha256": SHA256,
    }


def test_object_metadata_percent_encodes_non_ascii(make_summary: SummaryFactory) -> None:
    # Given unicode and control characters in the ids
    metadata = object_metadata(
        json_summary(make_summary, InvoiceId="Facture n° 1"), "SUPPLEMENT", "ü\n%", 1, SHA256
    )

    # Then the values are ASCII and decode back to the ids
    assert metadata["invoice-id"] == "Facture n%C2%B0 1"
    assert metadata["document-id"] == "%C3%BC%0A%25"
    assert unquote(metadata["document-id"]) == "ü\n%"
    assert all(value.isascii() for value in metadata.values())


@pytest.mark.parametrize("character", ["x", "é", "😀", "\u20ac", "%", "\n"])
@pytest.mark.parametrize("length", [1, 500, 1000])
def test_object_metadata_fits_s3_limit_for_long_ids(
    make_summary: SummaryFactory, character: str, length: int
) -> None:
    # Given invoice and document ids of up to 1,000 characters, possibly 4-byte unicode
    invoice_id = character * length
    document_id = character * length
    summary = json_summary(make_summary, InvoiceId=invoice_id)

    # When the metadata is built
    metadata = object_metadata(summary, "SUPPLEMENT", document_id, 987654321, SHA256)

    # Then it is ASCII, within 2 KiB, and the integrity fields are intact
    assert all(key.isascii() and value.isascii() for key, value in metadata.items())
    assert metadata_bytes(metadata) <= MAX_METADATA_BYTES == 2048
    assert metadata["sha256"] == SHA256
    assert metadata["size"] == "987654321"
    assert metadata["account-id"] == ACCOUNT
    assert metadata["billing-period"] == "2025-06"


def test_object_metadata_cuts_ids_with_an_ellipsis(make_summary: SummaryFactory) -> None:
    metadata = object_metadata(
        json_summary(make_summary, InvoiceId="i" * 1000), "SUPPLEMENT", "d" * 1000, 1, SHA256
    )
    assert metadata_bytes(metadata) == MAX_METADATA_BYTES
    assert metadata["document-id"].endswith("...")
    assert metadata["invoice-id"].startswith("i")


def test_object_metadata_too_large_outside_the_ids_is_a_contract_violation(
    make_summary: SummaryFactory,
) -> None:
    # Given an unbounded value in a field that is not an id (cannot be cut)
    summary = json_summary(make_summary, InvoiceType="X" * 3000)

    # When the metadata is built, Then ContractViolation names the size and the limit
    with pytest.raises(ContractViolation, match=r"user metadata of \d+ bytes; S3 allows 2048"):
        object_metadata(summary, "SUPPLEMENT", "doc-1", 1, SHA256)
    assert issubclass(ContractViolation, ValueError)


def test_cut_ids_remain_valid_percent_encoding(make_summary: SummaryFactory) -> None:
    # Given long unicode ids that must be cut
    summary = json_summary(make_summary, InvoiceId="é" * 1000)
    metadata = object_metadata(summary, "SUPPLEMENT", "😀" * 1000, 1, SHA256)

    # When the cut values (without the ellipsis) are decoded, Then they are whole UTF-8 escapes
    for key in ("invoice-id", "document-id"):
        value = metadata[key].removesuffix("...")
        assert not re.search(r"%[0-9A-F]?$", value), (key, value[-6:])
        unquote(value, errors="strict")


# --- parse_key: the one reader of the key contract -------------------------------------------------


def test_every_key_a_writer_makes_reads_back_with_parse_key() -> None:
    # Given the keys of one invoice: its documents, summary.json and a revision
    folder = invoice_prefix("archive/aws", ACCOUNT, PERIOD, "INV/1 ü")
    keys = {
        "document": document_key(folder, "TAX_E_INVOICE", "e-1", "xml", SHA),
        "summary": summary_key(folder),
        "revision": revision_key(folder, datetime(2026, 11, 3, 6, 0, tzinfo=UTC)),
    }
    assert keys["revision"].endswith("/revisions/20261103T060000.000000Z-summary.json")
    for kind, key in keys.items():
        # Then each reads back with its kind, account, period and its invoice's folder
        parsed = parse_key(key)
        assert parsed is not None
        assert (parsed.kind, parsed.prefix, parsed.account_id, parsed.period) == (
            kind,
            "archive/aws",
            ACCOUNT,
            "2025-06",
        )
        assert parsed.folder + "/" == folder
    # And keys outside the layout are not read as archive keys; odd names inside it are "other"
    assert parse_key("archive/aws/account=1/period=2025-06/x/invoice.pdf") is None
    assert parse_key("elsewhere.pdf") is None
    other = parse_key(folder + "revisions/notes.txt")
    assert other is not None
    assert other.kind == "other"
