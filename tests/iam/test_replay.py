"""The IAM replay tier (issue 16): every AWS call the functions make, recorded while they run on the
sandbox, is evaluated against the synthesized template of the function's role; every grant is used.

Two recorded runs: the archive's own accounts read with the functions' own credentials (a scheduled
listing that continues through the listing queue, documents large enough for multipart uploads,
re-archives and re-checks, quarantined messages, events), and several payers read through their roles
with invoice-unit discovery. They are replayed against the default template, and against the KMS +
Object Lock + several-payers template with the payer role's template.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_cdk.assertions import Template

from invoice_archiver.dal import clients
from invoice_archiver.handlers import fetcher
from invoice_archiver.infra.payer_role import PAYER_ROLE_STACK_NAME, PAYER_ROLE_STAGE, Param
from invoice_archiver.local.pipeline import scheduled_event
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.identity import Identity, InvoiceUnit
from tests.iam.recorder import Call, Recorder
from tests.iam.replay import replay, unused_grants
from tests.iam.template import ARCHIVE_ACCOUNT, Deployed, names_for
from tests.infra.infra_synth import synth
from tests.integration.conftest import Pipeline, message_for

PAYER, OTHER_PAYER, RECEIVER = "123456789012", "210987654321", "345678901234"
IDENTITY = Identity.payers([InvoiceUnit(PAYER, "unit-emea", "EMEA", RECEIVER)])
ROLES = [IDENTITY.role_arn(PAYER), IDENTITY.role_arn(OTHER_PAYER)]
EXTERNAL_ID = "archive-7f3a"
OWN = generate(
    seed=16,
    periods=((2026, 9), (2026, 10)),
    invoices_per_account_period=2,
    document_size=(1024, 6 * 1024 * 1024),
    supplemental=(1, 2),
)
PAYERS_VARIANT = {
    "kms_enabled": True,
    "object_lock_enabled": True,
    "source_role_arns": ",".join(ROLES),
    "source_external_id": EXTERNAL_ID,
    "discover_invoice_units": True,
}
ROLE_NAMES = {f: f"InvoiceArchiver-us-east-1-{f}" for f in ("lister", "fetcher")}
QUEUES = {
    "PipelineInvoiceQueue": "INVOICE_QUEUE_URL",
    "PipelineListingQueue": "LISTING_QUEUE_URL",
    "PipelineDeadLetterQueue": "DEAD_LETTER_QUEUE_URL",
}


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder().installed() as recorder:
        yield recorder


def run_own_accounts(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    """The archive's own accounts, with the functions' own credentials: everything they may do."""
    pipeline = make_pipeline(
        OWN, env={"MULTIPART_THRESHOLD_BYTES": str(5 * 1024 * 1024), "LISTING_RESERVE_SECONDS": "299"}
    )
    report = pipeline.run(scheduled_event(datetime(2026, 11, 12, 6, tzinfo=UTC)))
    assert report.clean, report.failures
    invoice = OWN.invoices[0].invoice_id
    rearchive = {**json.loads(message_for(invoice)), "reason": "rearchive", "listed_at": _now()}
    recheck = {**json.loads(message_for(invoice)), "reason": "recheck", "listed_at": _now()}
    forged = {**json.loads(message_for(invoice)), "account_id": "999988887777"}
    responses = [pipeline.fetch([json.dumps(b)]) for b in (rearchive, recheck, forged)]
    responses.append(pipeline.fetch(["{not json"]))
    assert all(r == {"batchItemFailures": []} for r in responses), responses
    return pipeline


def run_payers(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    """Two payers read through their roles, and the receiver of one's invoice unit, discovered."""
    env = {
        "ACCOUNT_IDS": "",
        "SOURCE_ROLE_ARNS": ",".join(ROLES),
        "SOURCE_EXTERNAL_ID": EXTERNAL_ID,
        "DISCOVER_INVOICE_UNITS": "true",
    }
    pipeline = make_pipeline(identity=IDENTITY, env=env)
    report = pipeline.run()
    assert report.clean, report.failures
    # In one local process the fetchers reuse the roles the lister assumed; in Lambda each function
    # assumes them itself: a fresh fetcher re-archives one payer invoice, through its own AssumeRole.
    clients.reset()
    fetcher.context.cache_clear()
    invoice = next(i for i in pipeline.dataset.invoices if i.account_id == PAYER)
    body = InvoiceMessage(
        account_id=PAYER,
        invoice_id=invoice.invoice_id,
        billing_period=str(BillingPeriod(*invoice.billing_period)),
        role_arn=IDENTITY.role_arn(PAYER),
        reason="rearchive",
        listed_at=datetime.now(UTC),
    ).body()
    assert pipeline.fetch([body]) == {"batchItemFailures": []}
    return pipeline


def _now() -> str:
    return datetime.now(UTC).isoformat()


def deployed(overrides: dict[str, Any] | None = None) -> tuple[Deployed, Deployed]:
    """The archive stack's template and the payer role's, as deployed with these settings."""
    stack = synth(overrides).stack
    archive = Deployed(Template.from_stack(stack).to_json(), region="us-east-1")
    payer_stack = stack.node.root.node.find_child(PAYER_ROLE_STAGE).node.find_child(PAYER_ROLE_STACK_NAME)
    parameters = {
        Param.ARCHIVE_ACCOUNT_ID: ARCHIVE_ACCOUNT,
        Param.ARCHIVE_STACK_NAME: "InvoiceArchiver",
        Param.ARCHIVE_REGION: "us-east-1",
        Param.EXTERNAL_ID: EXTERNAL_ID,
        Param.ROLE_NAME: "invoice-archiver-reader",
        Param.DISCOVER_INVOICE_UNITS: "true",
    }
    payer = Deployed(Template.from_stack(payer_stack).to_json(), region="us-east-1", parameters=parameters)
    return archive, payer


def local_names(pipeline: Pipeline) -> dict[str, Any]:
    """The sandbox's names for the stack's resources, while that sandbox runs."""
    return {
        "bucket": pipeline.settings.archive_bucket,
        "table": pipeline.settings.ledger_table,
        "queues": {prefix: os.environ[variable] for prefix, variable in QUEUES.items()},
    }


def names(local: dict[str, Any], archive: Deployed, *, kms: bool) -> Any:
    return names_for(archive, kms=kms, **local)


def test_every_call_the_functions_make_is_allowed_and_every_grant_is_used(
    make_pipeline: Callable[..., Pipeline], recorder: Recorder
) -> None:
    # Given the calls the functions made while archiving the archive's own accounts
    own = local_names(run_own_accounts(make_pipeline))
    own_calls = list(recorder.calls)
    assert {c.function for c in own_calls} == {"lister", "fetcher"}
    default, payer = deployed()

    # Then the default template allows every one of them, and grants nothing no call needs (or that is
    # not explained: what the Lambda runtime and the SQS event source use)
    own_names = names(own, default, kms=False)
    assert replay(own_calls, default, None, own_names, ROLE_NAMES) == []
    for function, role in ROLE_NAMES.items():
        assert unused_grants(own_calls, default, own_names, role, function) == [], function

    # And removing one needed statement from a copy of the template makes the replay fail, naming the
    # call, the code that made it and what is missing
    broken = replay(own_calls, default.without("ReadInvoices"), None, own_names, ROLE_NAMES)
    assert broken
    assert any("invoicing:ListInvoiceSummaries" in f and "logic/evidence.py" not in f for f in broken)
    assert all("no statement allows" in f for f in broken)

    # Given, as well, the calls made through payer roles with invoice-unit discovery
    recorder.calls.clear()
    payers = local_names(run_payers(make_pipeline))
    payer_calls = list(recorder.calls)
    assert {c.principal for c in payer_calls} >= set(ROLES)
    hardened, payer = deployed(PAYERS_VARIANT)

    # Then the KMS + Object Lock + several-payers template, with the payer role's, allows them all
    assert replay(own_calls, hardened, payer, names(own, hardened, kms=True), ROLE_NAMES) == []
    assert replay(payer_calls, hardened, payer, names(payers, hardened, kms=True), ROLE_NAMES) == []
    everything = own_calls + payer_calls
    for function, role in ROLE_NAMES.items():
        assert unused_grants(everything, hardened, names(own, hardened, kms=True), role, function) == []


def test_a_call_the_template_does_not_grant_is_named_with_the_code_that_made_it() -> None:
    # Given one recorded call no statement of the lister grants (it never writes to the archive)
    default, _ = deployed()
    params = (("Bucket", "b"), ("IfNoneMatch", "*"), ("Key", "invoices/x"))
    call = Call("lister", "own", "s3", "PutObject", params, "dal/archive.py:9")
    pipeline_names = names_for(
        default, bucket="b", table="t", queues={"PipelineInvoiceQueue": "q"}, kms=False
    )

    # Then the replay says what, where, and why
    [failure] = replay([call], default, None, pipeline_names, ROLE_NAMES)
    assert failure.startswith("lister s3:PutObject(Bucket='b', IfNoneMatch='*', Key='invoices/x') as its own")
    assert "from dal/archive.py:9 needs s3:PutObject" in failure
    assert "no statement allows s3:PutObject" in failure
