"""Downloading a document from its pre-signed URL into a spool file, hashing on the way. Bounded.

Nothing here may put the URL into an exception, a log line or a return value: errors name the
host and what went wrong, never the path or the query string that holds the signature.

Where a URL may lead (`check_url`, before any connection): https, port 443, on a host of one of S3's
endpoint forms (virtual-hosted or path-style, regional, dual-stack, FIPS, accelerated, China), under
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
import ipaddress
import re
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import IO

import urllib3

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
_LOOPBACK_HOSTS = {"localhost"}
# S3's endpoint forms:
#   [<bucket>.]s3[-fips|-accelerate|-external-1][.dualstack][.<region>|-<region>].amazonaws.com[.cn]
_REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}"
S3_HOST = re.compile(
    rf"^(?:[a-z0-9][a-z0-9.-]*\.)?s3(?:-fips|-accelerate|-external-1)?(?:\.dualstack)?"
    rf"(?:[.-]{_REGION})?\.amazonaws\.com(?:\.cn)?$"
)
Resolver = Callable[[str, int], list[str]]
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


class UnsafeUrl(Exception):
    """The URL points somewhere we do not download from."""


class DocumentTooLarge(Exception):
    """The document is larger than MAX_DOCUMENT_BYTES: it would be every time, so this is permanent."""


class DownloadFailed(Exception):
    """The download did not complete; fresh URLs and another attempt may help."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


@dataclass(frozen=True)
class Endpoint:
    """Where a checked URL connects: its scheme, host and port, and (for a public host) the address
    the connection must use, resolved and checked by `resolve_public`."""

    scheme: str
    host: str
    port: int
    loopback: bool


@dataclass
class Spooled:
    """A complete, verified download waiting to be uploaded."""

    file: IO[bytes]
    size: int
    sha256: str
    content_type: str

    def close(self) -> None:
        self.file.close()


def check_url(url: SecretUrl, host_suffixes: tuple[str, ...], allow_loopback: bool) -> Endpoint:
    """https on port 443, on an S3 endpoint host under an allowed suffix (matched on a label boundary);
    loopback (http or https, any port) in local mode only.

    The URL is parsed by urllib3, the parser that makes the connection, and anything ambiguous (a
    backslash, user info, no host) is refused outright.
    """
    parts = url.parts()
    if parts is None or not parts.host or parts.auth or "\\" in url.reveal():
        raise UnsafeUrl("refusing to download from a malformed or ambiguous URL")
    host, scheme = url.host, url.scheme
    if allow_loopback and scheme in {"http", "https"} and _is_loopback(host):
        return Endpoint(scheme, host, parts.port or (443 if scheme == "https" else 80), loopback=True)
    if scheme != "https":
        raise UnsafeUrl(f"refusing to download from {scheme or 'no'} scheme on host {host}")
    if parts.port not in (None, 443):
        raise UnsafeUrl(f"refusing to download from port {parts.port} on host {host}: only 443")
    suffixes = tuple("." + s.lstrip(".") for s in host_suffixes)
    if not any(host.endswith(s) or host == s[1:] for s in suffixes):
        raise UnsafeUrl(f"refusing to download from https scheme on host {host}: not an allowed suffix")
    if not S3_HOST.fullmatch(host):
        raise UnsafeUrl(f"refusing to download from https scheme on host {host}: not an S3 endpoint")
    return Endpoint(scheme, host, 443, loopback=False)


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_public(endpoint: Endpoint, resolve: Resolver = _system_resolver) -> str | None:
    """The address to connect to: the first the host resolves to, once every address is checked to be
    public (UnsafeUrl otherwise: permanent); None for loopback in local mode. A name that does not
    resolve is DownloadFailed (DNS may answer on the next attempt)."""
    if endpoint.loopback:
        return None
    try:
        addresses = resolve(endpoint.host, endpoint.port)
    except OSError as exc:
        raise DownloadFailed(f"cannot resolve {endpoint.host}: {type(exc).__name__}") from None
    if not addresses:
        raise DownloadFailed(f"cannot resolve {endpoint.host}: no address")
    for address in addresses:
        if not _public(address):
            raise UnsafeUrl(f"refusing to download from host {endpoint.host}: it resolves to {address}")
    return addresses[0]


def _public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _SIX_TO_FOUR:
            # 6to4 reaches the IPv4 address it embeds (which may be private) through a relay. Python
            # 3.13+ calls 2002::/16 non-global, 3.11 calls it global: refused here on every Python.
            return False
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


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
