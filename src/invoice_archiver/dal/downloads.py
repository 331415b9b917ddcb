"""Downloading a document from its pre-signed URL into a spool file, hashing on the way. Bounded.

Nothing here may put the URL into an exception, a log line or a return value: errors name the
host and what went wrong, never the path or the query string that holds the signature.

Where a URL may lead (url_safety.check_url, before any connection): https, port 443, on a host of one
of S3's endpoint forms (virtual-hosted or path-style, regional, dual-stack, FIPS, accelerated, China), under
one of DOCUMENT_HOST_SUFFIXES; loopback only in local mode (the sandbox). What it resolves to
(`resolve_public`): every address public, none private, loopback, link-local, multicast, reserved or
unspecified (IPv4-mapped IPv6 included), and the connection goes to the address that was checked, with
the host name kept for TLS (SNI and certificate) and the Host header, so DNS cannot answer differently
between the check and the connection.

How much is read (`download`): a declared length over MAX_DOCUMENT_BYTES is refused before the body is
read (`DocumentTooLarge`, permanent); reading stops at the first byte past the declared length; and the
whole download has a deadline (the invocation's, less what releasing the lease takes), not just each read:
no wait (connecting, the headers, any read of the body) lasts past it. A connection whose body was not
read whole is closed, never pooled, so what is left of it cannot be read as the next response.
"""

from __future__ import annotations

import hashlib
import socket
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import IO

import urllib3

from invoice_archiver.dal.download_errors import DocumentTooLarge, DownloadFailed
from invoice_archiver.dal.url_safety import Endpoint
from invoice_archiver.models.documents import SecretUrl

CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 8 * 1024 * 1024
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
ALLOWED_CONTENT_TYPES = {
    "application/pdf": "pdf",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/zip": "zip",
    "application/octet-stream": "bin",
}


@dataclass
class Spooled:
    """A complete, verified download waiting to be uploaded."""

    file: IO[bytes]
    size: int
    sha256: str
    content_type: str

    def close(self) -> None:
        self.file.close()


@lru_cache(maxsize=1)
def _pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(
        maxsize=16,
        retries=False,
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        block=False,
    )


def download(
    url: SecretUrl,
    endpoint: Endpoint,
    *,
    address: str | None = None,
    max_bytes: int,
    deadline: float | None = None,
    spool_dir: str | None = None,
) -> Spooled:
    """GET the URL into a spooled temporary file, hashing it; verify its size against Content-Length.

    `address`: connect there (the checked address of `endpoint.host`), keeping the host name for TLS
    and the Host header. `deadline`: a time.monotonic() by which the whole download must be done.
    """
    host = endpoint.host
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=spool_dir or None)  # noqa: SIM115
    try:
        response = _request(url, endpoint, address, _timeout(deadline, host))
    except urllib3.exceptions.HTTPError as exc:
        spool.close()
        raise DownloadFailed(f"{type(exc).__name__} connecting to {host}") from None
    except BaseException:
        spool.close()
        raise
    complete = False
    try:
        size, digest, content_type = _receive(response, spool, host, max_bytes, deadline)
        complete = True
    except urllib3.exceptions.HTTPError as exc:
        spool.close()
        raise DownloadFailed(f"{type(exc).__name__} while reading from {host}") from None
    except BaseException:
        spool.close()
        raise
    finally:
        if not complete:
            # A body given up on (refused, too long, past the deadline) may still be arriving: the
            # connection is closed, never pooled, or its rest would be read as the next response.
            response.close()
        response.release_conn()
    spool.seek(0)
    return Spooled(file=spool, size=size, sha256=digest, content_type=content_type)


def _request(
    url: SecretUrl, endpoint: Endpoint, address: str | None, timeout: urllib3.Timeout
) -> urllib3.BaseHTTPResponse:
    if address is None:
        return _pool().request("GET", url.reveal(), preload_content=False, redirect=False, timeout=timeout)
    parts = url.parts()
    assert parts is not None  # checked by check_url
    pool = _pool().connection_from_host(
        address,
        port=endpoint.port,
        scheme=endpoint.scheme,
        pool_kwargs={"server_hostname": endpoint.host, "assert_hostname": endpoint.host},
    )
    return pool.urlopen(
        "GET",
        parts.request_uri,
        headers={"Host": endpoint.host},
        preload_content=False,
        redirect=False,
        retries=False,
        timeout=timeout,
    )


def _timeout(deadline: float | None, host: str) -> urllib3.Timeout:
    """Connecting and waiting for the headers, together, end by the deadline (`total`)."""
    if deadline is None:
        return urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
    left = deadline - time.monotonic()
    if left <= 0:
        raise DownloadFailed(f"no time left in this invocation to download from {host}")
    return urllib3.Timeout(connect=min(CONNECT_TIMEOUT, left), read=min(READ_TIMEOUT, left), total=left)


def _read_within(response: urllib3.BaseHTTPResponse, deadline: float | None, host: str) -> bytes:
    """One read1 of the body that cannot outlast the deadline: the socket's timeout (set once, for the
    headers) is lowered to the time left before each read, so a host that goes silent late in a download
    is given up at the deadline, not READ_TIMEOUT after it."""
    bounded = False
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DownloadFailed(f"the download from {host} ran past this invocation's deadline")
        sock = getattr(response.connection, "sock", None)
        if isinstance(sock, socket.socket) and left < READ_TIMEOUT:
            sock.settimeout(left)
            bounded = True
    try:
        return response.read1(CHUNK, decode_content=False)
    except urllib3.exceptions.ReadTimeoutError:
        if bounded:
            raise DownloadFailed(f"the download from {host} ran past this invocation's deadline") from None
        raise


def _receive(
    response: urllib3.BaseHTTPResponse, spool: IO[bytes], host: str, max_bytes: int, deadline: float | None
) -> tuple[int, str, str]:
    """Check the answer, then stream its body into `spool`: (size, SHA-256, content type)."""
    if response.status != 200:
        code = _s3_error_code(response)
        raise DownloadFailed(
            f"HTTP {response.status} {code} from {host}".strip(),
            expired=response.status in {400, 403} and code in {"AccessDenied", "ExpiredToken", ""},
        )
    content_type = (response.headers.get("Content-Type") or "application/octet-stream").split(";")[0]
    content_type = content_type.strip().lower()
    if content_type not in ALLOWED_CONTENT_TYPES:
        raise DownloadFailed(f"unexpected Content-Type {content_type!r} from {host}")
    declared_text = response.headers.get("Content-Length")
    # ASCII digits only: str.isdigit() also takes '²', which int() then refuses with a ValueError.
    if declared_text is None or not (declared_text.isascii() and declared_text.isdigit()):
        raise DownloadFailed(f"no Content-Length from {host}; cannot verify the document is whole")
    declared = int(declared_text)
    if declared > max_bytes:
        raise DocumentTooLarge(
            f"a document of {declared} bytes from {host} is over the {max_bytes}-byte limit "
            "(MAX_DOCUMENT_BYTES)"
        )
    digest = hashlib.sha256()
    size = 0
    # read1: what one read of the socket brings (at most CHUNK), so a body that trickles in is measured
    # against the deadline as it comes, not after a read that waits for a whole chunk.
    while chunk := _read_within(response, deadline, host):
        size += len(chunk)
        if size > declared:
            raise DownloadFailed(f"more than the {declared} bytes Content-Length declared from {host}")
        digest.update(chunk)
        spool.write(chunk)
    if size != declared:
        raise DownloadFailed(f"body of {size} bytes from {host}, but Content-Length said {declared}")
    return size, digest.hexdigest(), content_type


def _s3_error_code(response: urllib3.BaseHTTPResponse) -> str:
    try:
        body = response.read(4096, decode_content=True).decode("utf-8", "replace")
    except urllib3.exceptions.HTTPError:
        return ""
    start, end = body.find("<Code>"), body.find("</Code>")
    return body[start + 6 : end].strip() if 0 <= start < end else ""


def extension_for(content_type: str) -> str:
    return ALLOWED_CONTENT_TYPES.get(content_type, "bin")
