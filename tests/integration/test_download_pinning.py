"""A checked address is where the download goes, and the host name is still what TLS and S3 see.

`resolve_public` checks every address an S3 host resolves to; `download(address=...)` must then
connect to that address (so DNS cannot answer differently between the check and the connection) while
the TLS handshake (SNI), the certificate check and the Host header (part of the URL's signature) keep
the host's name. Here a real TLS server on loopback holds a certificate for an S3 host name only, from a
CA made for the test; the download is pointed at its address.
"""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from invoice_archiver.dal import downloads
from invoice_archiver.dal.download_errors import DownloadFailed
from invoice_archiver.dal.url_safety import Endpoint
from invoice_archiver.models.documents import SecretUrl

NAME = "invoice-docs.s3.us-east-1.amazonaws.com"
BODY = b"%PDF-1.7 pinned"


@dataclass
class Seen:
    server_names: list[str | None] = field(default_factory=list)
    hosts: list[str | None] = field(default_factory=list)


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path, Seen]]:
    """A TLS server on 127.0.0.1 with a certificate for NAME (and nothing else), its CA's file, and
    what it saw: the SNI names and Host headers."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "invoice-archiver test CA")])
    ca = _certificate("invoice-archiver test CA", ca_key, ca_name, ca_key, ca=True)
    leaf = _certificate(NAME, leaf_key, ca_name, ca_key, ca=False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "leaf.pem").write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    seen = Seen()

    class Documents(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            del format, args

        def do_GET(self) -> None:
            seen.hosts.append(self.headers.get("Host"))
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "leaf.pem")
    context.sni_callback = lambda _socket, name, _context: seen.server_names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Documents)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], folder / "ca.pem", seen
    server.shutdown()


@pytest.fixture
def trusting_the_test_ca(tls: tuple[int, Path, Seen], monkeypatch: pytest.MonkeyPatch) -> None:
    """The downloads' pool as it is, except that it trusts the test CA instead of the system's."""
    pool = urllib3.PoolManager(
        maxsize=4, retries=False, timeout=urllib3.Timeout(connect=5, read=5), ca_certs=str(tls[1])
    )
    monkeypatch.setattr(downloads, "_pool", lambda: pool)


def test_the_download_connects_to_the_checked_address_and_tls_and_host_keep_the_name(
    tls: tuple[int, Path, Seen], trusting_the_test_ca: None
) -> None:
    # Given the host name NAME, whose checked address is 127.0.0.1 (no DNS is asked: the name does not
    # resolve there at all)
    port, _, seen = tls
    url = SecretUrl(f"https://{NAME}/2026/INV-1.pdf?X-Amz-Signature=SECRETSIG")
    before = len(seen.hosts)

    # When it is downloaded from that address
    spooled = downloads.download(
        url, Endpoint("https", NAME, port, loopback=False), address="127.0.0.1", max_bytes=1024
    )

    # Then the document arrives, the handshake named the host (SNI), the certificate was checked
    # against the name, and the request's Host header is the name the URL was signed for
    assert spooled.file.read() == BODY
    spooled.close()
    assert seen.server_names[-1] == NAME
    assert seen.hosts[before:] == [NAME]


def test_a_certificate_for_another_name_is_refused_even_at_the_checked_address(
    tls: tuple[int, Path, Seen], trusting_the_test_ca: None
) -> None:
    # Given another S3 host name pinned to the same address, whose server holds NAME's certificate
    port, _, seen = tls
    other = "someone-else.s3.us-east-1.amazonaws.com"
    url = SecretUrl(f"https://{other}/doc.pdf?X-Amz-Signature=SECRETSIG")
    before = len(seen.hosts)

    # When it is downloaded, Then TLS refuses it (the address alone proves nothing) and nothing is asked
    with pytest.raises(DownloadFailed, match=f"SSLError connecting to {other}") as caught:
        downloads.download(
            url, Endpoint("https", other, port, loopback=False), address="127.0.0.1", max_bytes=1024
        )
    assert "SECRETSIG" not in str(caught.value)
    assert seen.hosts[before:] == []
