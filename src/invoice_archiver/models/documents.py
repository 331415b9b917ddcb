"""What GetInvoicePDF returns, with the pre-signed URLs kept behind a redacting wrapper."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from urllib3.exceptions import LocationParseError
from urllib3.util import Url, parse_url

INVOICE_DOCUMENT = "INVOICE"
# The SupplementalDocumentType values of the API update of 2026-05-07, in the reference's order. Another
# value is still filed under the type the API sent, and recorded as not recognized.
SUPPLEMENTAL_DOCUMENT_TYPES = ("GOVERNMENT_INVOICE", "TAX_E_INVOICE", "PAYMENT_RECEIPT", "SUPPLEMENT")


class SecretUrl:
    """A pre-signed URL is a bearer credential: it never prints, logs, pickles or compares as text."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def parts(self) -> Url | None:
        """The URL as urllib3 (which makes the connection) parses it; None if it cannot be parsed."""
        try:
            return parse_url(self._value)
        except (LocationParseError, ValueError):
            return None

    @property
    def scheme(self) -> str:
        parts = self.parts()
        return (parts.scheme or "").lower() if parts else ""

    @property
    def host(self) -> str:
        parts = self.parts()
        return (parts.host or "").lower().strip("[]") if parts else ""

    def __repr__(self) -> str:
        return f"<pre-signed URL on {self.host or 'unknown host'}, redacted>"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a pre-signed URL must not be serialized")


@dataclass(frozen=True)
class DocumentRef:
    """One downloadable document of an invoice: the invoice itself or a supplemental document.

    `document_type` and `document_id` are exactly what the API sent: None when it sent none (never
    a guess and never a list position).
    """

    document_type: str | None  # INVOICE, or a SupplementalDocumentType
    document_id: str | None
    url: SecretUrl
    expires_at: datetime | None
    # The invoice document itself (GetInvoicePDF's DocumentUrl), whatever a supplemental type says.
    primary: bool = False

    @property
    def label(self) -> str:
        return f"{self.document_type or 'untyped'} {self.document_id or 'without id'}"

    @property
    def omitted_by_api(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, value in (("DocumentType", self.document_type), ("DocumentId", self.document_id))
            if value is None
        )

    @property
    def type_recognized(self) -> bool:
        return self.document_type == INVOICE_DOCUMENT or self.document_type in SUPPLEMENTAL_DOCUMENT_TYPES


@dataclass(frozen=True)
class ArchivedDocument:
    """A document that is in S3, verified, with what the API said (and did not say) about it."""

    document_type: str | None
    document_id: str | None
    key: str
    content_type: str
    size: int
    sha256: str
    omitted_by_api: tuple[str, ...] = ()
    type_recognized: bool = True

    def to_record(self) -> dict[str, str | int | bool | list[str] | None]:
        return {
            "document_type": self.document_type,
            "document_id": self.document_id,
            "key": self.key,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "omitted_by_api": list(self.omitted_by_api),
            "type_recognized": self.type_recognized,
        }
