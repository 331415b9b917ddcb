"""Pre-signed document URLs that look like S3's (``X-Amz-*`` query parameters), HMAC-signed by the emulator.

The signature covers the raw request path, ``X-Amz-Date`` and ``X-Amz-Expires``: changing any of them
invalidates the URL; once ``X-Amz-Date + X-Amz-Expires`` has passed the URL is expired.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from urllib.parse import quote, urlencode

DATE_FORMAT = "%Y%m%dT%H%M%SZ"
ACCESS_KEY = "ASIASANDBOXEXAMPLE00"


class Verdict(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"


def path_segment(value: str) -> str:
    """Percent-encode an id for one path segment; dots too, so ``..`` can never be a dot-segment."""
    return quote(value, safe="").replace(".", "%2E")


class UrlSigner:
    def __init__(self, secret: bytes, base_url: str, region: str = "us-east-1") -> None:
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.region = region

    def sign(self, path: str, issued_at: datetime, expires_in: int) -> tuple[str, str, datetime]:
        """Return (url, signature, expiry) for a GET of ``path`` (already percent-encoded)."""
        amz_date = issued_at.astimezone(UTC).strftime(DATE_FORMAT)
        signature = self._signature(path, amz_date, str(expires_in))
        query = urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": f"{ACCESS_KEY}/{amz_date[:8]}/{self.region}/s3/aws4_request",
                "X-Amz-Date": amz_date,
                "X-Amz-Expires": str(expires_in),
                "X-Amz-SignedHeaders": "host",
                "X-Amz-Signature": signature,
            }
        )
        expiry = datetime.strptime(amz_date, DATE_FORMAT).replace(tzinfo=UTC) + timedelta(seconds=expires_in)
        return f"{self.base_url}{path}?{query}", signature, expiry

    def verify(self, path: str, query: Mapping[str, str], now: datetime) -> Verdict:
        try:
            amz_date, expires, signature = (
                query["X-Amz-Date"],
                query["X-Amz-Expires"],
                query["X-Amz-Signature"],
            )
            issued = datetime.strptime(amz_date, DATE_FORMAT).replace(tzinfo=UTC)
            lifetime = int(expires)
        except (KeyError, ValueError):
            return Verdict.MALFORMED
        if not hmac.compare_digest(signature, self._signature(path, amz_date, expires)):
            return Verdict.BAD_SIGNATURE
        if now >= issued + timedelta(seconds=lifetime):
            return Verdict.EXPIRED
        return Verdict.VALID

    def _signature(self, path: str, amz_date: str, expires: str) -> str:
        message = f"GET\n{path}\n{amz_date}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
