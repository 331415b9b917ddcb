"""The command line's side of the SDK: endpoint variables, AWS_REGION, and timeouts that are never silent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ReadTimeoutError

from invoice_archiver.cli import aws
from invoice_archiver.cli.errors import CliError
from invoice_archiver.dal import clients


@pytest.fixture(autouse=True)
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fresh SDK clients, and the region variables restored afterwards (prepare() sets one)."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clients.reset()
    yield
    clients.reset()


def test_aws_region_wins_as_in_the_aws_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.prepare()
    assert clients.session().region_name == "eu-west-1"


@pytest.mark.parametrize("value", ["notaurl", "http://", "ftp://host", "http://host:port"])
def test_an_endpoint_variable_that_is_not_a_url_is_named(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", value)
    with pytest.raises(CliError, match=f"AWS_ENDPOINT_URL_S3={value} is not a URL"):
        aws.prepare()


def test_every_client_gets_the_short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    aws.prepare()
    config = clients.sqs().meta.config
    assert (config.connect_timeout, config.read_timeout) == (aws.CONNECT_SECONDS, aws.READ_SECONDS)


def test_a_timed_out_attempt_that_will_be_retried_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    timeout = ReadTimeoutError(endpoint_url="http://127.0.0.1:9/")
    context = {"context": {"retries": {"max": 3}}}

    aws.note_timeout(attempts=1, caught_exception=timeout, request_dict=context)
    aws.note_timeout(
        attempts=3, caught_exception=timeout, request_dict=context
    )  # the last: the error says it
    aws.note_timeout(attempts=1, caught_exception=None, request_dict=context)  # not a timeout

    assert capsys.readouterr().err.splitlines() == [
        f"invoice-archiver: http://127.0.0.1:9/ sent no answer in {aws.READ_SECONDS} s; trying again (2 of 3)"
    ]
