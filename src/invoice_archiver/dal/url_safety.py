"""Where a pre-signed URL may lead, checked before any connection (see dal/downloads.py's docstring):
https on port 443 to a host of one of S3's endpoint forms under DOCUMENT_HOST_SUFFIXES (loopback only in
local mode), resolving only to public addresses; the connection then goes to the address checked."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

from invoice_archiver.dal.download_errors import DownloadFailed, UnsafeUrl
from invoice_archiver.models.documents import SecretUrl

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


@dataclass(frozen=True)
class Endpoint:
    """Where a checked URL connects: its scheme, host and port, and (for a public host) the address
    the connection must use, resolved and checked by `resolve_public`."""

    scheme: str
    host: str
    port: int
    loopback: bool


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
