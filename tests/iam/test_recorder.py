"""The recorder: what it records, from which code, as whom; and nothing else (no test call, no body).

The requests are answered by botocore's Stubber (no network); the "function" is code whose file name is
a handler's, which is how the recorder tells the functions' requests from a test's own.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.iam.recorder import Recorder

HANDLER = "/somewhere/asset.abc/invoice_archiver/handlers/fetcher.py"
DAL = "/somewhere/asset.abc/invoice_archiver/dal/archive.py"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as installed:
        yield installed


def as_code_at(path: str, source: str, **names: Any) -> dict[str, Any]:
    """Run `source` as if it were the module at `path` (its frames carry that file name)."""
    scope: dict[str, Any] = dict(names)
    exec(compile(source, path, "exec"), scope)  # noqa: S102 - test code, built here
    return scope


def s3(**kwargs: Any) -> Any:
    return boto3.session.Session(
        aws_access_key_id=kwargs.pop("key", "AKIAOWN"), aws_secret_access_key="x", region_name="us-east-1"
    ).client("s3", **kwargs)


def test_a_functions_request_is_recorded_with_its_code_its_parameters_and_no_body(recorder: Recorder) -> None:
    client = s3()
    with Stubber(client) as stub:
        stub.add_response("put_object", {})
        # Given data-access code that puts a tagged object, called from the fetcher's handler module
        dal = as_code_at(
            DAL,
            "def put(client):\n"
            "    client.put_object(Bucket='b', Key='invoices/k', Body=b'secret bytes',\n"
            "                      Tagging='account=1&t=x', IfNoneMatch='*')\n",
        )
        as_code_at(HANDLER, "put(client)\n", put=dal["put"], client=client)
    # Then one record: the fetcher, the line of the call, the parameters that decide authorization
    [record] = recorder.calls
    assert record["function"] == "fetcher"
    assert record["origin"] == "invoice_archiver/dal/archive.py:2 in put"
    assert (record["service"], record["operation"], record["status"]) == ("s3", "PutObject", 200)
    assert record["params"] == {
        "Bucket": "b",
        "Key": "invoices/k",
        "IfNoneMatch": "*",
        "Tagging": {"account": "1", "t": "x"},
    }
    assert record["principal"] is None  # the function's own credentials
    assert "secret bytes" not in str(record)


def test_a_tests_own_request_is_not_recorded(recorder: Recorder) -> None:
    client = s3()
    with Stubber(client) as stub:
        stub.add_response("head_bucket", {})
        client.head_bucket(Bucket="b")
    assert recorder.calls == []


def test_a_request_through_an_assumed_role_names_the_role(recorder: Recorder) -> None:
    # Given the function assumes a role, then uses the credentials STS handed out
    sts = boto3.session.Session(aws_access_key_id="AKIAOWN", aws_secret_access_key="x").client(
        "sts", region_name="us-east-1"
    )
    role = "arn:aws:iam::222222222222:role/reader"
    issued = {
        "AccessKeyId": "ASIAROLEKEY123456",
        "SecretAccessKey": "s",
        "SessionToken": "t",
        "Expiration": dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    }
    reader = s3(key="ASIAROLEKEY123456")
    with Stubber(sts) as sts_stub, Stubber(reader) as s3_stub:
        sts_stub.add_response(
            "assume_role",
            {"Credentials": issued},
            {"RoleArn": role, "RoleSessionName": "session", "ExternalId": "external"},
        )
        s3_stub.add_client_error("head_object", http_status_code=404)
        as_code_at(
            HANDLER,
            "sts.assume_role(RoleArn=role, RoleSessionName='session', ExternalId='external')\n"
            "try:\n    reader.head_object(Bucket='b', Key='k')\nexcept Exception:\n    pass\n",
            sts=sts,
            reader=reader,
            role=role,
        )
    assume, head = recorder.calls
    assert assume["params"] == {"RoleArn": role, "RoleSessionName": "session", "ExternalId": "external"}
    assert assume["principal"] is None
    # Then the request made with the role's key is the role's, and its refusal is recorded too
    assert (head["operation"], head["principal"], head["status"]) == ("HeadObject", role, 404)


def test_clients_made_before_installing_or_after_uninstalling_record_nothing() -> None:
    early = s3()
    with Recorder() as recorder:
        late = s3()
    for client in (early, late):
        with Stubber(client) as stub:
            stub.add_response("head_bucket", {})
            as_code_at(HANDLER, "client.head_bucket(Bucket='b')\n", client=client)
    assert recorder.calls == []


def test_a_request_from_a_thread_without_the_handler_is_kept_as_unattributed_while_a_function_runs(
    recorder: Recorder,
) -> None:
    # Given a function that hands a request to a thread of its own (as s3transfer's uploads would)
    client = s3()
    with Stubber(client) as stub:
        stub.add_response("head_bucket", {})
        stub.add_response("head_bucket", {})
        recorder.expecting = "fetcher"
        worker = threading.Thread(target=lambda: client.head_bucket(Bucket="b"))
        worker.start()
        worker.join()
        # And the sandbox's own requests (its identity lookups) while the function runs
        as_code_at(
            "/x/invoice_archiver/sandbox/identity.py", "client.head_bucket(Bucket='b')\n", client=client
        )
        recorder.expecting = None
    # Then the thread's request is not lost: it is kept apart, naming the function that was running
    assert recorder.calls == []
    assert recorder.unattributed == [
        {"service": "s3", "operation": "HeadBucket", "origin": None, "while": "fetcher"}
    ]
