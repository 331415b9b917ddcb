"""Pre-signed URLs are bearer credentials: where we download from, and that they never leak as text."""

from __future__ import annotations

import copy
import io
import json
import logging
import pickle
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools import Logger
from urllib3.util import parse_url

from invoice_archiver.dal.download_errors import DownloadFailed, UnsafeUrl
from invoice_archiver.dal.url_safety import check_url, resolve_public
from invoice_archiver.logic.notices import redact
from invoice_archiver.models.documents import DocumentRef, SecretUrl

SUFFIXES = (".amazonaws.com",)
SECRET_PATH = "/secret-key-path/invoice.pdf"
SECRET_QUERY = "X-Amz-Credential=AKIAEXAMPLE%2F20250601&X-Amz-Signature=0123abcdSECRETSIG"
SECRET_PARTS = ("secret-key-path", "invoice.pdf", "AKIAEXAMPLE", "SECRETSIG", "X-Amz")


def presigned(base: str = "https://invoices.s3.us-east-1.amazonaws.com") -> SecretUrl:
    """Factory: a pre-signed-looking URL on `base` whose path and query are the secret parts."""
    return SecretUrl(f"{base}{SECRET_PATH}?{SECRET_QUERY}")


def assert_no_secret(text: str) -> None:
    for part in SECRET_PARTS:
        assert part not in text, f"{part!r} leaked in {text!r}"


# --- check_url: accepted --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    [
        "https://invoices.s3.us-east-1.amazonaws.com",
        "https://s3.amazonaws.com",
        "https://s3.eu-west-1.amazonaws.com",
        "https://invoices.s3-eu-west-1.amazonaws.com",
        "https://invoices.s3.dualstack.us-east-1.amazonaws.com",
        "https://s3-fips.us-gov-west-1.amazonaws.com",
        "https://invoices.s3-accelerate.amazonaws.com",
        "https://my.dotted.bucket.s3.amazonaws.com",
        "https://INVOICES.S3.AMAZONAWS.COM",
        "HTTPS://invoices.s3.amazonaws.com",
        "https://invoices.s3.amazonaws.com:443",
    ],
)
def test_https_on_an_s3_endpoint_is_accepted(base: str) -> None:
    endpoint = check_url(presigned(base), SUFFIXES, allow_loopback=False)
    assert (endpoint.scheme, endpoint.port, endpoint.loopback) == ("https", 443, False)


def test_the_china_partitions_s3_endpoints_are_accepted_under_their_suffix() -> None:
    check_url(presigned("https://b.s3.cn-north-1.amazonaws.com.cn"), (".amazonaws.com.cn",), False)


def test_configured_suffixes_restrict_further() -> None:
    # Given a suffix list without the global partition, Then its S3 hosts are refused
    with pytest.raises(UnsafeUrl, match="not an allowed suffix"):
        check_url(presigned("https://b.s3.amazonaws.com"), (".amazonaws.com.cn",), allow_loopback=False)
    # And a configured suffix never admits a host that is not an S3 endpoint
    with pytest.raises(UnsafeUrl, match="not an S3 endpoint"):
        check_url(presigned("https://docs.example.test"), (".example.test",), allow_loopback=False)


# --- check_url: refused ---------------------------------------------------------------------------

REFUSED = [
    "http://invoices.s3.amazonaws.com",  # plain http, even on an allowed host
    "ftp://invoices.s3.amazonaws.com",
    "file://invoices.s3.amazonaws.com",
    "//invoices.s3.amazonaws.com",  # no scheme
    "invoices.s3.amazonaws.com",
    "https://amazonaws.com.evil.example",
    "https://s3.amazonaws.com.evil.example",
    "https://evilamazonaws.com",
    "https://x.amazonaws.com@evil.example",  # userinfo: the host is evil.example
    "https://user:p4ss@evil.example",
    "https://evil.example/x.amazonaws.com",
    "https://evil.example?h=.amazonaws.com",
    "https://evil.example#.amazonaws.com",
    "https://x.amazonaws.com.",  # trailing dot: not the configured suffix
    "https://",
    "https://127.0.0.1:1234",  # loopback not allowed here
    "http://127.0.0.1:1234",
    "http://localhost",
    # Other AWS hosts: anyone's API Gateway, load balancer or service endpoint is no document host
    "https://amazonaws.com",
    "https://abc123.execute-api.us-east-1.amazonaws.com",
    "https://internal-lb-1.us-east-1.elb.amazonaws.com",
    "https://sts.amazonaws.com",
    "https://s3-website-us-east-1.amazonaws.com",
    "https://bucket.s3.amazonaws.com.evil.example",
    "https://evil-s3.amazonaws.com",
    # ... and S3 hosts on any port but 443
    "https://invoices.s3.amazonaws.com:8443",
    "https://invoices.s3.amazonaws.com:80",
]


@pytest.mark.parametrize("base", REFUSED)
def test_other_schemes_and_hosts_are_refused(base: str) -> None:
    with pytest.raises(UnsafeUrl, match="refusing to download"):
        check_url(presigned(base), SUFFIXES, allow_loopback=False)


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1:1234",
        "http://127.0.0.2",
        "http://127.255.255.254:8080",
        "http://localhost",
        "http://LOCALHOST:9000",
        "http://[::1]:9000",
        "https://127.0.0.1:8443",
    ],
)
def test_loopback_is_accepted_only_when_allowed(base: str) -> None:
    # Given a loopback URL (the local sandbox)
    url = presigned(base)

    # When loopback is allowed, Then it passes; otherwise it is refused
    check_url(url, SUFFIXES, allow_loopback=True)
    with pytest.raises(UnsafeUrl):
        check_url(url, SUFFIXES, allow_loopback=False)


@pytest.mark.parametrize(
    "base",
    [
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://0.0.0.0",
        "http://10.0.0.1",
        "http://169.254.169.254",  # instance metadata
        "http://[::ffff:169.254.169.254]",
        "http://invoices.s3.amazonaws.com",  # allow_loopback does not allow http elsewhere
        "ftp://127.0.0.1",
    ],
)
def test_allow_loopback_opens_nothing_else(base: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(presigned(base), SUFFIXES, allow_loopback=True)


@pytest.mark.parametrize("base", [*REFUSED, "http://169.254.169.254", "https://user:SECRETSIG@evil.example"])
def test_unsafe_url_messages_name_the_host_never_the_path_or_query(base: str) -> None:
    # Given a refused URL whose path, query (and userinfo) hold secrets
    with pytest.raises(UnsafeUrl) as caught:
        check_url(presigned(base), SUFFIXES, allow_loopback=False)

    # Then neither the message nor the exception's repr carries them
    assert_no_secret(str(caught.value))
    assert_no_secret(repr(caught.value))
    assert "SECRETSIG" not in " ".join(map(str, caught.value.args))


@pytest.mark.parametrize(
    "url", ["https://evil.example\\@x.amazonaws.com/doc.pdf", "https://evil.example\\.amazonaws.com/doc.pdf"]
)
def test_backslash_parser_differential_is_refused(url: str) -> None:
    # Given a URL that urllib3 (which performs the download) resolves to evil.example
    assert parse_url(url).host == "evil.example"

    # When checked, Then it is refused
    with pytest.raises(UnsafeUrl):
        check_url(SecretUrl(url), SUFFIXES, allow_loopback=False)


def test_suffix_without_leading_dot_matches_on_a_label_boundary() -> None:
    # Given a suffix configured without its leading dot
    suffixes = ("amazonaws.com",)

    # Then real subdomains pass, a look-alike registrable domain does not
    check_url(presigned("https://b.s3.amazonaws.com"), suffixes, allow_loopback=False)
    with pytest.raises(UnsafeUrl):
        check_url(presigned("https://evilamazonaws.com"), suffixes, allow_loopback=False)


def test_malformed_url_is_unsafe_not_a_crash() -> None:
    with pytest.raises(UnsafeUrl):
        check_url(
            SecretUrl("https://[oops/doc.pdf?X-Amz-Signature=SECRETSIG"), SUFFIXES, allow_loopback=False
        )


# --- SecretUrl ------------------------------------------------------------------------------------


def test_secret_url_never_renders_as_text() -> None:
    # Given a pre-signed URL
    url = presigned()

    # When rendered every way Python renders objects as text
    renderings = [
        repr(url),
        str(url),
        f"{url}",
        f"{url!r}",
        f"{url!s}",
        format(url),
        "{}".format(url),  # noqa: UP032
        "%s %r" % (url, url),  # noqa: UP031
        repr([url]),
        repr({"url": url}),
        str((url,)),
    ]

    # Then none reveals the path or query, and each says it is redacted and where it points
    for text in renderings:
        assert_no_secret(text)
    assert str(url) == "<pre-signed URL on invoices.s3.us-east-1.amazonaws.com, redacted>"


def test_secret_url_reveal_returns_the_url() -> None:
    text = f"https://invoices.s3.amazonaws.com{SECRET_PATH}?{SECRET_QUERY}"
    assert SecretUrl(text).reveal() == text


def test_secret_url_scheme_and_host_are_lower_case() -> None:
    url = SecretUrl("HTTPS://Invoices.S3.AmazonAWS.com/x")
    assert (url.scheme, url.host) == ("https", "invoices.s3.amazonaws.com")


def test_secret_url_without_a_host_still_renders_safely() -> None:
    assert (
        str(SecretUrl("not a url?X-Amz-Signature=SECRETSIG")) == "<pre-signed URL on unknown host, redacted>"
    )


def test_secret_url_is_not_text_and_does_not_compare_as_text() -> None:
    text = f"https://invoices.s3.amazonaws.com{SECRET_PATH}?{SECRET_QUERY}"
    assert SecretUrl(text) != text
    assert not isinstance(SecretUrl(text), str)
    with pytest.raises(TypeError):
        json.dumps({"url": SecretUrl(text)})


def test_standard_logging_never_reveals_the_url() -> None:
    # Given a std logging logger writing to a buffer
    stream = io.StringIO()
    log = logging.getLogger("unit.secret-url.std")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(url)s"))
    log.addHandler(handler)
    log.propagate = False
    try:
        # When the URL is logged as an argument and as an extra field
        url = presigned()
        log.warning("download from %s (%r)", url, url, extra={"url": url})
    finally:
        log.removeHandler(handler)

    # Then the output holds the redacted form only
    output = stream.getvalue()
    assert "redacted" in output
    assert_no_secret(output)


def test_powertools_logger_never_reveals_the_url() -> None:
    # Given the project's kind of logger (Powertools, JSON) writing to a buffer
    stream = io.StringIO()
    log = Logger(service="unit", logger_handler=logging.StreamHandler(stream), logger_name="unit-secret-url")

    # When the URL is logged in the message, as extra keys, nested, and as a dataclass field
    url = presigned()
    ref = DocumentRef("INVOICE", "doc-1", url, datetime(2025, 7, 1, tzinfo=UTC))
    log.info("fetching %s", url, extra={"url": url, "nested": {"urls": [url]}, "ref": ref})
    log.info({"url": url})

    # Then nothing of the URL but its host appears
    output = stream.getvalue()
    assert output.count("redacted") >= 4
    assert_no_secret(output)


def test_document_ref_repr_does_not_reveal_the_url() -> None:
    ref = DocumentRef("SUPPLEMENT", "doc-1", presigned(), None)
    assert_no_secret(repr(ref))
    assert ref.label == "SUPPLEMENT doc-1"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secret_url_cannot_be_pickled(protocol: int) -> None:
    with pytest.raises(TypeError, match="must not be serialized"):
        pickle.dumps(presigned(), protocol=protocol)


def test_secret_url_cannot_be_copied_into_a_serialisable_form() -> None:
    with pytest.raises(TypeError, match="must not be serialized"):
        copy.deepcopy(presigned())


def test_secret_url_repr_of_a_malformed_url_does_not_raise() -> None:
    text = str(SecretUrl("https://[oops/doc.pdf?X-Amz-Signature=SECRETSIG"))
    assert "redacted" in text
    assert "SECRETSIG" not in text


# --- redact ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"GET https://invoices.s3.amazonaws.com{SECRET_PATH}?{SECRET_QUERY} failed",
            "GET <url redacted> failed",
        ),
        ("two: http://127.0.0.1:1234/a?b=c and HTTPS://X.Y/Z", "two: <url redacted> and <url redacted>"),
        (
            "X-Amz-Signature=abc123&X-Amz-Credential=AKIA%2Fx&X-Amz-Security-Token=tok",
            "X-Amz-Signature=<redacted>&X-Amz-Credential=<redacted>&X-Amz-Security-Token=<redacted>",
        ),
        ("x-amz-signature=abc ok", "x-amz-signature=<redacted> ok"),
        ("Signature=abc Expires=1700000000 AWSAccessKeyId=AKIA", "Signature=<redacted> Expires=<redacted> "
         "AWSAccessKeyId=<redacted>"),
        ("HTTP 403 AccessDenied from b.s3.amazonaws.com", "HTTP 403 AccessDenied from b.s3.amazonaws.com"),
        ("", ""),
    ],
)  # fmt: skip
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("wrapper", ["{}", "'{}'", '"{}"', "({})", "<{}>", "url={}\nnext line", "[{}]"])
@pytest.mark.parametrize(
    "base", ["https://invoices.s3.amazonaws.com", "http://127.0.0.1:1234", "https://[::1]:8443", "s3://b"]
)
def test_redact_removes_every_secret_part_however_the_url_is_quoted(wrapper: str, base: str) -> None:
    # Given a URL inside quotes, brackets or followed by a new line
    text = "DownloadFailed: " + wrapper.format(f"{base}{SECRET_PATH}?{SECRET_QUERY}")

    # When redacted, Then no part of the path or query survives, and the prefix does
    redacted = redact(text)
    assert_no_secret(redacted)
    assert redacted.startswith("DownloadFailed: ")


def test_redact_keeps_text_without_secrets() -> None:
    text = "ArchiveConflict: invoices/account=123456789012/period=2025-06/INV-1/invoice.pdf already holds"
    assert redact(text) == text


def test_redact_removes_a_percent_encoded_url() -> None:
    text = "redirect to https%3A%2F%2Fb.s3.amazonaws.com%2Fk%3FX-Amz-Signature%3D0123abcdSECRETSIG"
    assert "SECRETSIG" not in redact(text)


# --- resolve_public: where a checked host really leads ---------------------------------------------


def resolver(*addresses: str) -> Callable[[str, int], list[str]]:
    """Factory: a resolver answering these addresses for any host (DNS is outside this process)."""
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # instance metadata
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "127.0.0.1",
        "0.0.0.0",  # noqa: S104
        "100.64.0.1",  # shared address space (not global)
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:169.254.169.254",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "2002:a00:1::1",  # 6to4 of 10.0.0.1 (Python 3.11 calls 2002::/16 global, 3.13+ does not)
        "2002:808:808::1",  # 6to4 whatever it embeds: S3 never answers with one
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo
        "fe80::1%eth0",  # scoped link-local
        "not-an-address",
    ],
)
def test_a_host_resolving_to_a_non_public_address_is_refused(address: str) -> None:
    # Given an S3 host name whose DNS answer (or one of them) is not a public address
    endpoint = check_url(presigned(), SUFFIXES, allow_loopback=False)

    # Then it is refused, naming the host and the address, never the URL
    with pytest.raises(UnsafeUrl, match=r"resolves to") as caught:
        resolve_public(endpoint, resolver("52.217.12.34", address))
    assert_no_secret(str(caught.value))


def test_a_public_answer_is_the_address_connected_to() -> None:
    endpoint = check_url(presigned(), SUFFIXES, allow_loopback=False)
    assert resolve_public(endpoint, resolver("52.217.12.34", "2600:1f18::1")) == "52.217.12.34"


def test_a_name_that_does_not_resolve_is_a_retryable_download_failure() -> None:
    endpoint = check_url(presigned(), SUFFIXES, allow_loopback=False)

    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror("temporary failure in name resolution")

    with pytest.raises(DownloadFailed, match=r"cannot resolve invoices\.s3\.us-east-1\.amazonaws\.com"):
        resolve_public(endpoint, failing)


def test_loopback_in_local_mode_is_not_resolved() -> None:
    endpoint = check_url(presigned("http://127.0.0.1:9000"), SUFFIXES, allow_loopback=True)
    assert resolve_public(endpoint, resolver("10.0.0.1")) is None
