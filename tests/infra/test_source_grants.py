"""Several payers in the stack: context takes the sources; the functions may assume exactly those roles."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks
from infra_synth import Synth, cdk_json_context

from app import build_app
from invoice_archiver.constants import FETCHER_HANDLER, LISTER_HANDLER
from invoice_archiver.infra.context import DeployConfigError

PAYER_ROLE = "arn:aws:iam::111111111111:role/invoice-archiver-reader"
OTHER_PAYER_ROLE = "arn:aws:iam::222222222222:role/billing/invoice-archiver-reader"
RECEIVER = "333333333333"
SOURCES = f"{PAYER_ROLE},{RECEIVER}={PAYER_ROLE},{OTHER_PAYER_ROLE}"
SOURCE_CONTEXT = {
    "source_role_arns": SOURCES,
    "source_external_id": "archive-7f3a",
    "discover_invoice_units": "true",
}

SynthWith = Callable[[Mapping[str, Any]], Synth]


@pytest.fixture(scope="module")
def with_sources(synth_with: SynthWith) -> Synth:
    return synth_with(SOURCE_CONTEXT)


def statements(synth: Synth, policy_prefix: str) -> list[dict[str, Any]]:
    logical_id = synth.logical_id(policy_prefix, "AWS::IAM::Policy")
    found: list[dict[str, Any]] = synth.resources("AWS::IAM::Policy")[logical_id]["Properties"][
        "PolicyDocument"
    ]["Statement"]
    return found


def environment(synth: Synth, handler: str) -> dict[str, Any]:
    (resource,) = [
        r for r in synth.resources("AWS::Lambda::Function").values() if r["Properties"]["Handler"] == handler
    ]
    variables: dict[str, Any] = resource["Properties"]["Environment"]["Variables"]
    return variables


def assume_role_statements(synth: Synth) -> list[dict[str, Any]]:
    """Every statement of every IAM policy in the stack that allows an sts action."""
    return [
        statement
        for resource in synth.resources("AWS::IAM::Policy").values()
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if any(str(a).startswith("sts:") for a in _actions(statement))
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


@pytest.mark.parametrize("policy", ["PipelineListerPermissions", "PipelineFetcherPermissions"])
def test_each_function_may_assume_exactly_the_configured_roles(with_sources: Synth, policy: str) -> None:
    # Given three sources behind two distinct roles
    # When the stack is synthesized, Then the function's policy ends with one statement naming both roles
    found = statements(with_sources, policy)
    assert found[-1] == {
        "Sid": "AssumeSourceRoles",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": [PAYER_ROLE, OTHER_PAYER_ROLE],
    }
    # And no other statement of it mentions sts
    assert [s for s in found[:-1] if any(a.startswith("sts:") for a in _actions(s))] == []


def test_no_other_policy_allows_any_sts_action(with_sources: Synth) -> None:
    assert len(assume_role_statements(with_sources)) == 2


def test_without_sources_no_function_may_assume_any_role(default: Synth, hardened: Synth) -> None:
    assert assume_role_statements(default) == []
    assert assume_role_statements(hardened) == []


def test_the_functions_read_the_sources_from_their_environment(with_sources: Synth) -> None:
    lister = environment(with_sources, LISTER_HANDLER)
    fetcher = environment(with_sources, FETCHER_HANDLER)
    for variables in (lister, fetcher):
        assert variables["SOURCE_ROLE_ARNS"] == SOURCES
        assert variables["SOURCE_EXTERNAL_ID"] == "archive-7f3a"
    # The fetcher checks each message's source against the same configuration the lister reads
    assert lister["DISCOVER_INVOICE_UNITS"] == fetcher["DISCOVER_INVOICE_UNITS"] == "true"
    # With sources and no account_ids, the lister archives the sources only, not the stack's own account
    assert lister["ACCOUNT_IDS"] == fetcher["ACCOUNT_IDS"] == ""


def test_without_sources_the_variables_are_empty_and_the_own_account_is_archived(default: Synth) -> None:
    lister = environment(default, LISTER_HANDLER)
    assert lister["SOURCE_ROLE_ARNS"] == ""
    assert lister["SOURCE_EXTERNAL_ID"] == ""
    assert lister["DISCOVER_INVOICE_UNITS"] == "false"
    assert lister["ACCOUNT_IDS"] == {"Ref": "AWS::AccountId"}


def test_cdk_nag_has_nothing_to_say_about_the_grants(with_sources: Synth) -> None:
    report = AwsSolutionsChecks(verbose=True).validate_scope(with_sources.stack)
    assert [v.rule_name for v in report.violations] == []


def test_cdk_json_lists_the_source_keys_with_their_defaults() -> None:
    context = cdk_json_context()
    assert context["source_role_arns"] == []
    assert context["source_external_id"] == ""
    assert context["discover_invoice_units"] is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"source_role_arns": "arn:aws:iam::111111111111:user/reader"}, "not an IAM role ARN"),
        ({"source_role_arns": f"{PAYER_ROLE},{PAYER_ROLE}"}, "listed twice"),
        (
            {"source_role_arns": PAYER_ROLE, "account_ids": "111111111111"},
            "also in ACCOUNT_IDS",
        ),
        ({"source_external_id": "no spaces allowed"}, "sts:ExternalId"),
        ({"discover_invoice_units": "perhaps"}, "valid boolean"),
    ],
)
def test_a_bad_source_setting_stops_the_synth_naming_the_key(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(DeployConfigError) as caught:
        build_app(cdk.App(context={**cdk_json_context(), **overrides}))
    assert "context key '" in str(caught.value)
    assert message in str(caught.value)


def test_the_functions_own_roles_read_invoices_only_for_sources_read_with_their_own_credentials(
    with_sources: Synth, synth_with: SynthWith
) -> None:
    def invoicing_actions(synth: Synth, policy: str, sid: str) -> list[str]:
        found = [s for s in statements(synth, policy) if s.get("Sid") == sid]
        return [action for statement in found for action in statement["Action"]]

    # Given sources read through roles only: each role discovers its units (the payer role grants it),
    # and the functions' own credentials never call the Invoicing API: their roles may not
    for policy in ("PipelineListerPermissions", "PipelineFetcherPermissions"):
        granted = [a for s in statements(with_sources, policy) for a in _actions(s)]
        assert [a for a in granted if a.startswith(("invoicing:", "aws-portal:"))] == [], policy
    # Given accounts read with the functions' own credentials too: those are discovered with them
    both = synth_with({**SOURCE_CONTEXT, "account_ids": "444444444444"})
    assert invoicing_actions(both, "PipelineListerPermissions", "ListInvoices") == [
        "invoicing:ListInvoiceSummaries",
        "invoicing:ListInvoiceUnits",
        "aws-portal:ViewBilling",
    ]
    assert "invoicing:ListInvoiceUnits" in invoicing_actions(
        both, "PipelineFetcherPermissions", "ReadInvoices"
    )
