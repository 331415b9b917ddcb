"""SOURCE_ROLE_ARNS, SOURCE_EXTERNAL_ID, DISCOVER_INVOICE_UNITS: parsed once, bad values named."""

from __future__ import annotations

import pytest

from invoice_archiver.config import ConfigError, load_settings
from invoice_archiver.models.source import Source, parse_source, parse_sources, role_arns

from .factories import ACCOUNT, FULLWIDTH_ACCOUNT, OTHER_ACCOUNT, EnvFactory

PAYER = "111111111111"
RECEIVER = "222222222222"
ROLE = f"arn:aws:iam::{PAYER}:role/invoice-archiver-reader"
OTHER_ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/billing/invoice-archiver-reader"


def test_no_sources_by_default(make_env: EnvFactory) -> None:
    settings = load_settings(make_env())
    assert settings.source_role_arns == ()
    assert settings.source_external_id == ""
    assert settings.discover_invoice_units is False


def test_a_role_arn_archives_its_own_account_and_an_account_prefix_another(make_env: EnvFactory) -> None:
    # Given a payer's role, the same role for an invoice-unit receiver, another payer's role (with a path)
    env = make_env(SOURCE_ROLE_ARNS=f" {ROLE}, {RECEIVER}={ROLE} ,{OTHER_ROLE}", SOURCE_EXTERNAL_ID="ext-1")
    # When parsed
    settings = load_settings(env, function="lister")
    # Then each entry is a source: the account to archive and the role to read it through
    assert settings.source_role_arns == (
        Source(PAYER, ROLE),
        Source(RECEIVER, ROLE),
        Source(OTHER_ACCOUNT, OTHER_ROLE),
    )
    assert settings.source_external_id == "ext-1"
    # And the roles the functions may assume are the distinct ARNs, in order
    assert role_arns(settings.source_role_arns) == (ROLE, OTHER_ROLE)


def test_a_source_prints_as_its_entry() -> None:
    assert [str(s) for s in parse_sources([ROLE, f"{RECEIVER}={ROLE}"])] == [ROLE, f"{RECEIVER}={ROLE}"]
    assert str(Source(ACCOUNT)) == ACCOUNT
    assert Source(RECEIVER, ROLE).role_account_id == PAYER
    assert Source(ACCOUNT).role_account_id is None


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws-cn:iam::111111111111:role/reader",
        "arn:aws-us-gov:iam::111111111111:role/a/b/reader",
        "arn:aws:iam::111111111111:role/R+=,.@_-".replace(",", ""),
    ],
)
def test_role_arns_of_every_partition_and_path_parse(arn: str) -> None:
    assert parse_source(arn) == Source("111111111111", arn)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("reader", "not an IAM role ARN"),
        ("arn:aws:iam::111111111111:user/reader", "not an IAM role ARN"),
        ("arn:aws:iam::11111111111:role/reader", "not an IAM role ARN"),
        ("arn:aws:sts::111111111111:assumed-role/reader/session", "not an IAM role ARN"),
        (f"arn:aws:iam::{FULLWIDTH_ACCOUNT}:role/reader", "not an IAM role ARN"),
        (f"{FULLWIDTH_ACCOUNT}={ROLE}", "before '=' is not a 12-digit account id"),
        (f"1234={ROLE}", "before '=' is not a 12-digit account id"),
        (f"={ROLE}", "before '=' is not a 12-digit account id"),
        (f"{RECEIVER}=", "not an IAM role ARN"),
        (f"{ROLE},{ROLE}", f"account {PAYER} is listed twice"),
        (f"{RECEIVER}={ROLE},{RECEIVER}={OTHER_ROLE}", f"account {RECEIVER} is listed twice"),
    ],
)
def test_a_bad_source_is_refused_naming_the_variable(make_env: EnvFactory, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match="SOURCE_ROLE_ARNS") as caught:
        load_settings(make_env(SOURCE_ROLE_ARNS=value))
    assert message in str(caught.value)


def test_an_account_is_read_one_way_only(make_env: EnvFactory) -> None:
    # Given an account both in ACCOUNT_IDS (own credentials) and behind a role
    env = make_env(ACCOUNT_IDS=f"{ACCOUNT},{PAYER}", SOURCE_ROLE_ARNS=ROLE)
    # Then the configuration is refused, naming both variables and the account
    with pytest.raises(ConfigError, match=rf"SOURCE_ROLE_ARNS: .*{PAYER} also in ACCOUNT_IDS"):
        load_settings(env)
    # And apart, they are fine
    settings = load_settings(make_env(ACCOUNT_IDS=ACCOUNT, SOURCE_ROLE_ARNS=ROLE))
    assert settings.account_ids == (ACCOUNT,)
    assert settings.source_role_arns == (Source(PAYER, ROLE),)


@pytest.mark.parametrize("value", ["x", "has space", "semi;colon", "a" * 1225, "é-accent"])
def test_a_bad_external_id_is_refused(make_env: EnvFactory, value: str) -> None:
    with pytest.raises(ConfigError, match=r"SOURCE_EXTERNAL_ID: .*sts:ExternalId"):
        load_settings(make_env(SOURCE_EXTERNAL_ID=value))


@pytest.mark.parametrize("value", ["ab", "Org-1_payer+archive=x,y.z@a:b/c", "a" * 1224])
def test_external_ids_sts_accepts_are_accepted(make_env: EnvFactory, value: str) -> None:
    assert load_settings(make_env(SOURCE_EXTERNAL_ID=value)).source_external_id == value


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("false", False), ("1", True), ("no", False)]
)
def test_discover_invoice_units_is_a_boolean(make_env: EnvFactory, value: str, expected: bool) -> None:
    assert load_settings(make_env(DISCOVER_INVOICE_UNITS=value)).discover_invoice_units is expected


def test_discover_invoice_units_refuses_anything_else(make_env: EnvFactory) -> None:
    with pytest.raises(ConfigError, match="DISCOVER_INVOICE_UNITS"):
        load_settings(make_env(DISCOVER_INVOICE_UNITS="sometimes"))


@pytest.mark.parametrize(
    ("account", "role"),
    [
        ("123456789012", "arn:aws:iam::123456789012:role/reader\n"),
        ("123456789012\n", None),
    ],
)
def test_a_trailing_newline_is_not_part_of_an_account_or_a_role(account: str, role: str | None) -> None:
    with pytest.raises(ValueError, match="not"):
        Source(account, role)
