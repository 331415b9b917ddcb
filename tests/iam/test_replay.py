"""Every AWS request the functions send is allowed by the synthesized policies, and every grant is needed.

Given the real lister and fetcher on the sandbox, configured by a synthesized template (both variants,
tests/iam/conftest.py) and driven through every path that sends a request (tests/iam/scenarios.py),
when their recorded requests are replayed against that template's policies (identity, bucket, queue,
key and trust policies, explicit Denies and conditions included), then none is refused, and every
action granted to a function's role is needed by a recorded call, used by Lambda itself for the
function, or listed with its reason (tests/iam/replay.py GRANTED_WITHOUT_A_CALL).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from tests.iam.conftest import VARIANTS, Variant, recorded
from tests.iam.replay import GRANTED_WITHOUT_A_CALL, replay

pytestmark = pytest.mark.xdist_group("iam")

SRC = Path(__file__).resolve().parents[2] / "src"
# What each function must have sent for the replay to mean anything (a recorder that records nothing, or
# a scenario that stopped early, fails here rather than passing on nothing).
SENT = {
    "lister": {
        "ListInvoiceSummaries",
        "SendMessageBatch",
        "SendMessage",
        "Query",
        "GetItem",
        "UpdateItem",
        "DeleteItem",
    },
    "fetcher": {
        "GetInvoicePDF",
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "HeadObject",
        "GetObject",
        "UpdateItem",
        "PutEvents",
        "SendMessage",
    },
}
SENT_THROUGH_PAYER_ROLES = {"lister": {"AssumeRole", "ListInvoiceUnits"}, "fetcher": {"AssumeRole"}}


def test_every_request_the_functions_send_is_allowed(variant: Variant) -> None:
    # When the recorded requests are replayed against the variant's synthesized policies
    report = replay(variant.records, variant.archive())
    # Then none would be refused (each finding names the call, the code that made it and the statement)
    assert not report.findings, report.failures()
    assert report.evaluated > len(variant.records)


def test_every_grant_is_needed_or_listed_with_its_reason(variant: Variant) -> None:
    report = replay(variant.records, variant.archive())
    assert not report.unused, "granted but never needed:\n" + "\n".join(report.unused)
    # And what only Lambda itself uses is there for it: the event source mapping's polling and the logs
    used_by_lambda = "\n".join(report.used_by_lambda)
    assert "sqs:ReceiveMessage" in used_by_lambda
    assert "logs:PutLogEvents" in used_by_lambda


def test_every_listed_reason_is_still_needed() -> None:
    # A reason for a grant that no variant has any more, or that a call now needs, is stale: remove it
    reasoned: dict[str, list[str]] = defaultdict(list)
    for name in VARIANTS:
        variant = recorded(name)
        for line in replay(variant.records, variant.archive()).reasoned:
            reasoned[line].append(name)
    for function, action in GRANTED_WITHOUT_A_CALL:
        role = "" if function == "*" else f"the {function}'s role"
        assert any(f" grants {action} on " in line and line.startswith(role) for line in reasoned), (
            function,
            action,
        )


def test_the_replay_drove_every_path_that_sends_a_request(variant: Variant) -> None:
    sent: dict[str, set[str]] = defaultdict(set)
    through_roles: dict[str, set[str]] = defaultdict(set)
    for record in variant.records:
        sent[record["function"]].add(record["operation"])
        if record["principal"] is not None:
            through_roles[record["function"]].add(record["operation"])
    for function, operations in SENT.items():
        assert operations <= sent[function], (function, operations - sent[function])
    if variant.settings.source_role_arns:
        for function in SENT_THROUGH_PAYER_ROLES:
            assert SENT_THROUGH_PAYER_ROLES[function] <= sent[function]
        # every Invoicing call went through a payer role: the functions' own roles may not read invoices
        invoicing = {r["principal"] is not None for r in variant.records if r["service"] == "invoicing"}
        assert invoicing == {True}
    assert {r["step"] for r in variant.records} >= {"scheduled run", "redelivered", "operator requests"}


def test_each_record_names_the_code_that_made_the_request(variant: Variant) -> None:
    for record in variant.records:
        origin = record["origin"]
        path, _, line = origin.split(" in ")[0].rpartition(":")
        source = SRC / path
        assert source.is_file(), origin
        lines = source.read_text().splitlines()
        assert 0 < int(line) <= len(lines), origin
        assert "(" in lines[int(line) - 1], origin  # the line of the call itself
