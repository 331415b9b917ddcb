"""How a download fails: refused before any connection, too large, or incomplete (worth another try)."""

from __future__ import annotations


class UnsafeUrl(Exception):
    """The URL points somewhere we do not download from."""


class DocumentTooLarge(Exception):
    """The document is larger than MAX_DOCUMENT_BYTES: it would be every time, so this is permanent."""


class DownloadFailed(Exception):
    """The download did not complete; fresh URLs and another attempt may help."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired
