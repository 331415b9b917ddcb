"""What GetInvoicePDF returns, with the pre-signed URLs kept behind a redacting wrapper."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from urllib3.exceptions import LocationParseError
from urllib3.util import Url, parse_url

INVOICE_DOCUMENT = "INVOICE"


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
    """One downloadable document of an invoice: the invoice itself or a supplemental document."""

    document_type: str  # INVOICE, GOVERNMENT_INVOICE, TAX_E_INVOICE, PAYMENT_RECEIPT or SUPPLEMENT
    document_id: str
    url: SecretUrl
    expires_at: datetime | None

    @property
    def label(self) -> str:
        return f"{self.document_type} {self.document_id}"


@dataclass(frozen=True)
class ArchivedDocument:
    """A document that is in S3, verified."""

    document_type: str
    document_id: str
    key: str
    content_type: str
    size: int
    sha256: str

    def to_record(self) -> dict[str, str | int]:
        return {
            "document_type": self.document_type,
            "document_id": self.document_id,
            "key": self.key,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
        }
