"""Downloads are bounded (issue 15, item 5), against a real HTTP server on loopback that misbehaves.

The document host is outside our control: it may declare a huge body, send more than it declared, or
trickle a byte at a time so that no single read ever times out. Each must end quickly, with a clear
reason and without reading what was not asked for.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from invoice_archiver.dal import downloads, url_safety
from invoice_archiver.dal.download_errors import DocumentTooLarge, DownloadFailed
from invoice_archiver.models.documents import SecretUrl

GIB = 1024**3
SENT: dict[str, int] = {}


class Misbehaving(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        del format, args

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        SENT[path] = 0
        # A client that stops reading is what these tests want
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            getattr(self, "_" + path.strip("/").replace("-", "_"))()

    def _headers(self, **headers: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def _huge(self) -> None:
        # Declares three GiB, sends 1 MiB (a reader that trusts it would keep waiting for the rest)
        self._headers(Content_Length=str(3 * GIB))
        self._send(b"%" * (1024 * 1024))

    def _liar(self) -> None:
        # Declares 10 bytes, but chunked: a reader that ignores the declaration reads 64 MiB
        self._headers(Content_Length="10", Transfer_Encoding="chunked")
        for _ in range(1024):
            block = b"x" * 65536
            self._send(b"%x\r\n%b\r\n" % (len(block), block))
        self._send(b"0\r\n\r\n")

    def _trickle(self) -> None:
        # One byte every 20 ms: no read ever waits long, the whole would take hours
        self._headers(Content_Length=str(1024 * 1024))
        for _ in range(1024 * 1024):
            self._send(b"%")
            time.sleep(0.02)

    def _stall(self) -> None:
        # Sends 1 KiB of 1 MiB, moves the download's clock to 0.3 s before its deadline, and goes silent
        self._headers(Content_Length=str(1024 * 1024))
        STALL.clock.skip_to(STALL.deadline - 0.3)
        self._send(b"%" * 1024)
        STALL.released.wait(timeout=30)

    def _slow_huge(self) -> None:
        # Declares three GiB and sends its body only 2 s later: a connection pooled after the refusal
        # would be idle when it is taken again, and the next request on it would read this body
        self._headers(Content_Length=str(3 * GIB))
        time.sleep(2)
        self._send(b"%" * 1024)

    def _small(self) -> None:
        self._headers(Content_Length="8")
        self._send(b"%PDF-1.7")

    def _odd_length(self) -> None:
        # A Content-Length of '1' and a superscript two: str.isdigit() says yes, int() says no
        self._headers(Content_Length="1\u00b2")
        self._send(b"%")

    def _send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()
        SENT[self.path.split("?", 1)[0]] += len(data)


class Clock:
    """time.monotonic() as downloads.py sees it: the real one plus an offset the server may move on."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def skip_to(self, moment: float) -> None:
        self.offset = moment - time.monotonic()


class Stall:
    def __init__(self) -> None:
        self.clock = Clock()
        self.deadline = 0.0
        self.released = threading.Event()


STALL = Stall()


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def fetch(host: str, path: str, *, max_bytes: int = 2 * GIB, deadline: float | None = None) -> None:
    url = SecretUrl(f"{host}{path}?X-Amz-Signature=SECRETSIG")
    endpoint = url_safety.check_url(url, (".amazonaws.com",), allow_loopback=True)
    spooled = downloads.download(url, endpoint, max_bytes=max_bytes, deadline=deadline)
    spooled.close()


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(host: str) -> None:
    # When a host declares 3 GiB and the limit is 2 GiB, Then it is refused at once, as permanent
    with pytest.raises(
        DocumentTooLarge, match=r"3221225472 bytes .* over the 2147483648-byte limit"
    ) as caught:
        fetch(host, "/huge")
    assert "SECRETSIG" not in str(caught.value)


def test_reading_stops_past_the_declared_length(host: str) -> None:
    # When a host declares 10 bytes and streams 64 MiB, Then reading stops right after the 10th byte
    with pytest.raises(DownloadFailed, match="more than the 10 bytes Content-Length declared"):
        fetch(host, "/liar")
    assert SENT["/liar"] < 64 * 1024 * 1024


def test_a_trickling_body_ends_at_the_deadline_not_after_hours(host: str) -> None:
    # When a host sends one byte at a time, each read answered well within its timeout,
    # Then the download fails as soon as the overall deadline passes (retried with fresh URLs)
    with pytest.raises(DownloadFailed, match="ran past this invocation's deadline"):
        fetch(host, "/trickle", deadline=time.monotonic() + 0.5)
    assert SENT["/trickle"] < 1024 * 1024


def test_no_time_left_means_no_connection(host: str) -> None:
    with pytest.raises(DownloadFailed, match="no time left in this invocation"):
        fetch(host, "/huge", deadline=time.monotonic() - 1)


def test_a_host_that_goes_silent_late_is_given_up_at_the_deadline_not_a_read_timeout_later(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a download with an hour left and a read timeout of 5 s, whose host sends 1 KiB, then (with
    # the clock moved to 0.3 s before the deadline) goes silent: a timeout set once, at the start,
    # would wait its full 5 s past a deadline that leaves 20 s to release the lease
    monkeypatch.setattr(downloads, "READ_TIMEOUT", 5.0)
    monkeypatch.setattr(downloads, "time", STALL.clock)
    STALL.deadline = STALL.clock.monotonic() + 3600
    try:
        # When it is downloaded, Then it fails at the deadline, as a retryable failure saying so
        with pytest.raises(DownloadFailed, match="ran past this invocation's deadline") as caught:
            fetch(host, "/stall", deadline=STALL.deadline)
    finally:
        STALL.released.set()
    assert "SECRETSIG" not in str(caught.value)


def test_a_content_length_that_is_not_ascii_digits_is_a_download_failure_not_a_crash(host: str) -> None:
    with pytest.raises(DownloadFailed, match="no Content-Length"):
        fetch(host, "/odd-length")


def test_a_refused_body_never_becomes_the_next_download(host: str) -> None:
    # Given a download refused after its headers, its body still to come on the connection
    with pytest.raises(DocumentTooLarge):
        fetch(host, "/slow-huge")

    # When the next document is downloaded from the same host, Then it is that document, read on a
    # connection of its own (a pooled one would answer with the refused body: a ProtocolError)
    url = SecretUrl(f"{host}/small?X-Amz-Signature=SECRETSIG")
    spooled = downloads.download(
        url, url_safety.check_url(url, (".amazonaws.com",), allow_loopback=True), max_bytes=GIB
    )
    assert spooled.file.read() == b"%PDF-1.7"
    spooled.close()
