"""Downloading a document from its pre-signed URL into a spool file, hashing on the way.

Nothing here may put the URL into an exception, a log line or a return value: errors name the
host and what went wrong, never the path or the query string that holds the signature.
"""

from __future__ import annotations

import hashlib
import ipaddress
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from typing import IO

import urllib3

from invoice_archiver.models.documents import SecretUrl

CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 8 * 1024 * 1024
ALLOWED_CONTENT_TYPES = {
    "application/pdf": "pdf",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/zip": "zip",
    "application/octet-stream": "bin",
}
_LOOPBACK_HOSTS = {"localhost"}


class UnsafeUrl(Exception):
    """The URL points somewhere we do not download from."""


class DownloadFailed(Exception):
    """The download did not complete; fresh URLs and another attempt may help."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


@dataclass
class Spooled:
    """A complete, verified download waiting to be uploaded."""

    file: IO[bytes]
    size: int
    sha256: str
    content_type: str

    def close(self) -> None:
        self.file.close()


def check_url(url: SecretUrl, host_suffixes: tuple[str, ...], allow_loopback: bool) -> None:
    """Only https on an allowed host suffix (matched on a label boundary); loopback in local mode.

    The URL is parsed by urllib3, the parser that makes the connection, and anything ambiguous
    (a backslash, user info, no host) is refused outright.
    """
    parts = url.parts()
    if parts is None or not parts.host or parts.auth or "\\" in url.reveal():
        raise UnsafeUrl("refusing to download from a malformed or ambiguous URL")
    host, scheme = url.host, url.scheme
    suffixes = tuple("." + s.lstrip(".") for s in host_suffixes)
    if scheme == "https" and any(host.endswith(s) or host == s[1:] for s in suffixes):
        return
    if allow_loopback and scheme in {"http", "https"} and _is_loopback(host):
        return
    raise UnsafeUrl(f"refusing to download from {scheme or 'no'} scheme on host {host}")


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def _pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(
        maxsize=16,
        retries=False,
        timeout=urllib3.Timeout(connect=10.0, read=60.0),
        block=False,
    )


def download(url: SecretUrl, *, spool_dir: str | None = None) -> Spooled:
    """GET the URL into a spooled temporary file; verify the size against Content-Length."""
    host = url.host
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=spool_dir or None)  # noqa: SIM115
    try:
        response = _pool().request("GET", url.reveal(), preload_content=False, redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        spool.close()
        raise DownloadFailed(f"{type(exc).__name__} connecting to {host}") from None
    try:
        if response.status != 200:
            code = _s3_error_code(response)
            raise DownloadFailed(
                f"HTTP {response.status} {code} from {host}".strip(),
                expired=response.status in {400, 403} and code in {"AccessDenied", "ExpiredToken", ""},
            )
        content_type = (
            (response.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip()
        )
        content_type = content_type.lower()
        if content_type not in ALLOWED_CONTENT_TYPES:
            raise DownloadFailed(f"unexpected Content-Type {content_type!r} from {host}")
        declared = response.headers.get("Content-Length")
        digest = hashlib.sha256()
        size = 0
        for chunk in response.stream(CHUNK, decode_content=False):
            digest.update(chunk)
            spool.write(chunk)
            size += len(chunk)
        if declared is None or not declared.isdigit():
            raise DownloadFailed(f"no Content-Length from {host}; cannot verify the document is whole")
        if size != int(declared):
            raise DownloadFailed(f"body of {size} bytes from {host}, but Content-Length said {declared}")
    except urllib3.exceptions.HTTPError as exc:
        spool.close()
        raise DownloadFailed(f"{type(exc).__name__} while reading from {host}") from None
    except BaseException:
        spool.close()
        raise
    finally:
        response.release_conn()
    spool.seek(0)
    return Spooled(file=spool, size=size, sha256=digest.hexdigest(), content_type=content_type)


def _s3_error_code(response: urllib3.BaseHTTPResponse) -> str:
    try:
        body = response.read(4096, decode_content=True).decode("utf-8", "replace")
    except urllib3.exceptions.HTTPError:
        return ""
    start, end = body.find("<Code>"), body.find("</Code>")
    return body[start + 6 : end].strip() if 0 <= start < end else ""


def extension_for(content_type: str) -> str:
    return ALLOWED_CONTENT_TYPES.get(content_type, "bin")
