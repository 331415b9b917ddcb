"""The S3 archive contract: key layout, object tags and user metadata. Pure functions.

    <prefix>/account=<account>/period=<YYYY-MM>/<invoice>/invoice.pdf
    <prefix>/account=<account>/period=<YYYY-MM>/<invoice>/<document-type>.<document-id>.<ext>
    <prefix>/account=<account>/period=<YYYY-MM>/<invoice>/summary.json   (written last)
    <prefix>/account=<account>/period=<YYYY-MM>/<invoice>/revisions/<YYYYMMDDTHHMMSS.ffffff>Z-summary.json

This module owns every key form: writers build keys here, and readers (verify, report, the archive tree)
read them back with `parse_key`.

Invoice and document ids are percent-encoded into one safe path segment each (anything but A-Z a-z 0-9
_ - is escaped, so '.', '/' and '..' cannot survive), so no id can climb out of its folder. The type
and the id of a supplemental document are joined by '.', which the encoding always escapes: two
different (type, id) pairs never share a name, and a supplemental document, whose name always holds
two dots, never lands on the invoice's own `invoice.<ext>` (the invoice document is the one
GetInvoicePDF returns as `DocumentUrl`, not a type).

If the API omits a supplemental document's type or id, the name says so instead of guessing, and
what is missing is replaced by something stable, the content's SHA-256:

    untyped=<document-id>.<ext>            no DocumentType
    <document-type>.sha256=<hex>.<ext>     no DocumentId
    untyped=sha256=<hex>.<ext>             neither

'=' never survives the encoding of a type or an id, so these names cannot collide with the names of
documents the API described in full.

Archives written before 2026-12-04 named a described supplemental document `<type>-<id>.<ext>` and
one without an id `<type>-sha256=<hex>.<ext>`. Those objects keep their keys (nothing is ever
renamed or overwritten); the ledger and summary.json name every document's key, and a document
known by its (type, id) is never downloaded again, so old and new names coexist in one folder.
`parse_document_name` tells every form apart.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from invoice_archiver.models.period import BillingPeriod

SUMMARY_FILE = "summary.json"
REVISIONS = "revisions"
_KEY = re.compile(
    r"^(?P<prefix>.+)/account=(?P<account>\d{12})/period=(?P<period>\d{4}-(?:0[1-9]|1[0-2]))/"
    r"(?P<invoice>[^/]+)/(?P<revisions>revisions/)?(?P<name>[^/]+)$"
)
_REVISION_NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-summary\.json$")
INVOICE_NAME = "invoice"
UNTYPED = "untyped="
MAX_TAGS = 10
MAX_TAG_VALUE = 256
MAX_METADATA_BYTES = 2048
MAX_SEGMENT = 200
MAX_KEY_BYTES = 1024
_UNSAFE_SEGMENT = re.compile(r"[^A-Za-z0-9_\-]")
_TAG_UNSAFE = re.compile(r"[^\w .:/=+\-@]", re.ASCII)


class ContractViolation(ValueError):
    """An object would break one of S3's limits on tags or metadata."""


def safe_segment(value: str) -> str:
    """Percent-encode everything but letters, digits, '_' and '-' (so '.', '/' and '..' cannot survive).

    A segment longer than MAX_SEGMENT is cut and ends in '~' plus a hash of the whole id: '~' never
    survives the encoding, so a cut segment cannot collide with an uncut one, and keys stay under
    S3's 1,024-byte limit.
    """
    if not value:
        raise ValueError("an empty id cannot name a path segment")
    encoded = _UNSAFE_SEGMENT.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), value)
    if len(encoded) <= MAX_SEGMENT:
        return encoded
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:24]
    return _cut_escapes(encoded[: MAX_SEGMENT - 25]) + "~" + digest


def _cut_escapes(text: str) -> str:
    """Drop a trailing, incomplete %XX escape left by cutting a percent-encoded string."""
    return re.sub(r"%[0-9A-F]?$", "", text)


def invoice_prefix(prefix: str, account_id: str, period: BillingPeriod, invoice_id: str) -> str:
    return f"{prefix}/account={account_id}/period={period}/{safe_segment(invoice_id)}/"


def document_key(
    invoice_folder: str,
    document_type: str | None,
    document_id: str | None,
    extension: str,
    sha256: str,
    *,
    primary: bool = False,
) -> str:
    """The document's key: `invoice.<ext>` for the invoice document (`primary`), else its type and id as
    the API sent them (see the module docstring)."""
    if primary:
        return _checked(f"{invoice_folder}{INVOICE_NAME}.{extension}")
    identity = safe_segment(document_id) if document_id else f"sha256={sha256}"
    name = f"{type_segment(document_type)}.{identity}" if document_type else f"{UNTYPED}{identity}"
    return _checked(f"{invoice_folder}{name}.{extension}")


def type_segment(document_type: str) -> str:
    """`GOVERNMENT_INVOICE` -> `government-invoice` (encoded like an id: never holds '.' or '=')."""
    return safe_segment(document_type.lower().replace("_", "-"))


@dataclass(frozen=True)
class DocumentName:
    """What a document's file name says: the invoice document, or a supplemental document's type and
    id as named (`type_part` encoded, None when untyped; `id_part` encoded, or `sha256=<hex>`), and
    whether it is a name from before the '.' separator (`legacy`: type and id cannot be told apart)."""

    primary: bool
    type_part: str | None
    id_part: str | None
    extension: str
    legacy: bool = False


def parse_document_name(name: str) -> DocumentName | None:
    """Read a document's file name (the last segment of its key); None for anything else."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or not extension or "/" in name:
        return None
    if stem == INVOICE_NAME:
        return DocumentName(True, None, None, extension)
    if stem.startswith(UNTYPED):
        identity = stem[len(UNTYPED) :]
        return DocumentName(False, None, identity, extension) if identity and "." not in identity else None
    type_part, separator, identity = stem.partition(".")
    if separator:
        if not type_part or not identity or "." in identity:
            return None
        return DocumentName(False, type_part, identity, extension)
    return DocumentName(False, None, stem, extension, legacy=True)


def summary_key(invoice_folder: str) -> str:
    return _checked(invoice_folder + SUMMARY_FILE)


def _checked(key: str) -> str:
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ContractViolation(f"object key of {len(key.encode('utf-8'))} bytes; S3 allows {MAX_KEY_BYTES}")
    return key


def tag_value(value: object) -> str:
    """S3 tag values: at most 256 characters from letters, digits, spaces and _ . : / = + - @."""
    return _TAG_UNSAFE.sub("_", str(value))[:MAX_TAG_VALUE]


def object_tags(summary: dict[str, Any], document_type: str | None) -> dict[str, str]:
    entity = summary.get("Entity") or {}
    tags = {
        "account": summary.get("AccountId"),
        "invoice-id": summary.get("InvoiceId"),
        "billing-period": _period_text(summary),
        "invoice-type": summary.get("InvoiceType"),
        "document-type": document_type,
        "billing-entity": entity.get("BillingEntity"),
        "receiver-role": summary.get("ReceiverRole"),
        "bill-type": summary.get("BillType"),
        "archiver": "invoice-archiver",
    }
    clean = {key: tag_value(value) for key, value in tags.items() if value not in (None, "")}
    if len(clean) > MAX_TAGS:
        raise ContractViolation(f"{len(clean)} tags; S3 allows {MAX_TAGS}")
    return clean


def tagging_header(tags: dict[str, str]) -> str:
    return urlencode(tags, quote_via=quote)


def metadata_value(value: object) -> str:
    """User metadata must be ASCII: anything else is percent-encoded (RFC 3986, UTF-8)."""
    return quote(str(value), safe=" !#$&'()*+,-./:;=?@[]^_`{|}~")


def object_metadata(
    summary: dict[str, Any], document_type: str | None, document_id: str | None, size: int, sha256: str
) -> dict[str, str]:
    metadata = {
        "account-id": summary.get("AccountId"),
        "invoice-id": summary.get("InvoiceId"),
        "billing-period": _period_text(summary),
        "invoice-type": summary.get("InvoiceType"),
        "issued-date": summary.get("IssuedDate"),
        "receiver-role": summary.get("ReceiverRole"),
        "document-type": document_type,
        "document-id": document_id,
        "size": size,
        "sha256": sha256,
    }
    clean = {key: metadata_value(value) for key, value in metadata.items() if value not in (None, "")}
    used = sum(len(k.encode()) + len(v.encode()) for k, v in clean.items())
    if used > MAX_METADATA_BYTES:
        # Ids are the only unbounded values; cut them (the full ids are in summary.json and the ledger).
        for key in ("document-id", "invoice-id"):
            excess = used - MAX_METADATA_BYTES
            if excess > 0 and key in clean:
                keep = max(0, len(clean[key]) - excess - 3)
                used -= len(clean[key]) - (keep + 3)
                clean[key] = _cut_escapes(clean[key][:keep]) + "..."
    if used > MAX_METADATA_BYTES:
        raise ContractViolation(f"user metadata of {used} bytes; S3 allows {MAX_METADATA_BYTES}")
    return clean


def _period_text(summary: dict[str, Any]) -> str | None:
    period = summary.get("BillingPeriod")
    return str(BillingPeriod.from_api(period)) if period else None


def revision_key(invoice_folder: str, at: datetime) -> str:
    """`<folder>/revisions/20261103T060000.123456Z-summary.json` (UTC, fixed width: sorts by time)."""
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return _checked(f"{invoice_folder.rstrip('/')}/{REVISIONS}/{stamp}-summary.json")


@dataclass(frozen=True)
class ArchiveKey:
    """What a key of the archive names: its invoice's folder, and which object of it."""

    prefix: str
    account_id: str
    period: str
    invoice_segment: str  # the invoice id as encoded in the key
    kind: str  # "summary", "revision", "document", or "other" (a name no writer of ours makes)
    name: str  # the object's name in its folder (`revisions/...` for a revision)

    @property
    def folder(self) -> str:
        """`<prefix>/account=.../period=.../<invoice>` (no trailing slash)."""
        return f"{self.prefix}/account={self.account_id}/period={self.period}/{self.invoice_segment}"


def parse_key(key: str) -> ArchiveKey | None:
    """Read a key of the archive's layout; None for a key outside its folders."""
    match = _KEY.match(key)
    if match is None:
        return None
    name = match["name"]
    if match["revisions"]:
        kind = "revision" if _REVISION_NAME.match(name) else "other"
        name = f"{REVISIONS}/{name}"
    elif name == SUMMARY_FILE:
        kind = "summary"
    else:
        kind = "document" if parse_document_name(name) is not None else "other"
    return ArchiveKey(match["prefix"], match["account"], match["period"], match["invoice"], kind, name)
