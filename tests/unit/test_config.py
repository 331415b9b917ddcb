"""invoice_archiver.config: the environment parsed once into Settings; bad values named by their variable."""

from __future__ import annotations

import pytest

from invoice_archiver.config import ConfigError, Settings, env_var_names, load_settings
from invoice_archiver.constants import DEFAULT_INVOICING_REGION, RECEIVER_ROLES
from invoice_archiver.env_vars import ENV_VARS, Function

from .factories import ACCOUNT, FULLWIDTH_ACCOUNT, OTHER_ACCOUNT, QUEUE_URL, EnvFactory

LISTER_VARS = [
    "LEDGER_TABLE",
    "INVOICE_QUEUE_URL",
    "LISTING_QUEUE_URL",
    "LISTING_RESERVE_SECONDS",
    "DEAD_LETTER_QUEUE_URL",
    "ACCOUNT_IDS",
    "RECEIVER_ROLES",
    "SOURCE_ROLE_ARNS",
    "SOURCE_EXTERNAL_ID",
    "DISCOVER_INVOICE_UNITS",
    "LOOKBACK_PERIODS",
    "INVOICING_REGION",
    "INVOICING_MAX_ATTEMPTS",
    "MISSING_INVOICE_DAY",
    "UNSETTLED_AFTER_DAYS",
    "INVOICING_RATE_LIMIT",
]
FETCHER_VARS = [
    "ARCHIVE_BUCKET",
    "ARCHIVE_PREFIX",
    "LEDGER_TABLE",
    "DEAD_LETTER_QUEUE_URL",
    "ACCOUNT_IDS",
    "SOURCE_ROLE_ARNS",
    "SOURCE_EXTERNAL_ID",
    "DISCOVER_INVOICE_UNITS",
    "INVOICING_REGION",
    "LEASE_SECONDS",
    "DOWNLOAD_ATTEMPTS",
    "INVOICING_MAX_ATTEMPTS",
    "MULTIPART_THRESHOLD_BYTES",
    "MAX_DOCUMENT_BYTES",
    "SPOOL_DIRECTORY",
    "DOCUMENT_HOST_SUFFIXES",
    "ALLOW_LOOPBACK_DOCUMENT_URLS",
    "REVISIT_DAYS",
    "EVENT_BUS_NAME",
    "INVOICING_RATE_LIMIT",
    "FETCHER_CONCURRENCY",
]


# --- defaults -------------------------------------------------------------------------------------


def test_defaults_apply_when_only_required_variables_are_set(make_env: EnvFactory) -> None:
    # Given an environment with only the required variables
    env = make_env()

    # When it is parsed for each function
    for function in ("lister", "fetcher"):
        settings = load_settings(env, function=function)

        # Then every optional setting has its documented default
        assert settings.archive_bucket == "invoice-archive"
        assert settings.ledger_table == "invoice-ledger"
        assert settings.invoice_queue_url == QUEUE_URL
        assert settings.archive_prefix == "invoices"
        assert settings.dead_letter_queue_url == ""
        assert settings.account_ids == ()
        assert settings.receiver_roles == ()
        assert settings.lookback_periods == 2
        assert settings.invoicing_region == DEFAULT_INVOICING_REGION == "us-east-1"
        assert settings.lease_seconds == 900
        assert settings.download_attempts == 4
        assert settings.invoicing_max_attempts == 8
        assert settings.multipart_threshold_bytes == 16 * 1024 * 1024
        assert settings.spool_directory == ""
        assert settings.document_host_suffixes == (".amazonaws.com",)
        assert settings.allow_loopback_document_urls is False


def test_empty_values_count_as_unset(make_env: EnvFactory) -> None:
    # Given optional variables present but empty (as CloudFormation often renders them)
    env = make_env(ARCHIVE_PREFIX="", LOOKBACK_PERIODS="", DOCUMENT_HOST_SUFFIXES="", ACCOUNT_IDS="")

    # When parsed
    settings = load_settings(env, function="fetcher")

    # Then the defaults apply instead of a validation error
    assert settings.archive_prefix == "invoices"
    assert settings.lookback_periods == 2
    assert settings.document_host_suffixes == (".amazonaws.com",)
    assert settings.account_ids == ()


def test_unrelated_variables_are_ignored(make_env: EnvFactory) -> None:
    # Given an environment that also holds the Lambda runtime's own variables
    env = make_env(PATH="/usr/bin", AWS_REGION="eu-west-1", _HANDLER="x.handler")

    # When parsed, Then the extra names neither fail nor leak into the settings
    assert load_settings(env, function="lister").invoicing_region == "us-east-1"


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variables only in the process environment
    monkeypatch.setenv("LEDGER_TABLE", "from-os-environ")
    monkeypatch.setenv("INVOICE_QUEUE_URL", QUEUE_URL)
    monkeypatch.setenv("LOOKBACK_PERIODS", "5")

    # When load_settings is called without a mapping
    settings = load_settings(function="lister")

    # Then os.environ was read
    assert settings.ledger_table == "from-os-environ"
    assert settings.lookback_periods == 5


def test_explicit_values_override_defaults(make_env: EnvFactory) -> None:
    # Given every optional variable set to a non-default value
    env = make_env(
        LOOKBACK_PERIODS="0",
        INVOICING_REGION="eu-central-1",
        LEASE_SECONDS="60",
        DOWNLOAD_ATTEMPTS="10",
        INVOICING_MAX_ATTEMPTS="1",
        MULTIPART_THRESHOLD_BYTES=str(5 * 1024 * 1024),
        SPOOL_DIRECTORY="/mnt/spool",
        DEAD_LETTER_QUEUE_URL=QUEUE_URL + "-dlq",
        ALLOW_LOOPBACK_DOCUMENT_URLS="true",
    )

    # When parsed
    settings = load_settings(env)

    # Then each value is typed and kept
    assert settings.lookback_periods == 0
    assert settings.invoicing_region == "eu-central-1"
    assert settings.lease_seconds == 60
    assert settings.download_attempts == 10
    assert settings.invoicing_max_attempts == 1
    assert settings.multipart_threshold_bytes == 5 * 1024 * 1024
    assert settings.spool_directory == "/mnt/spool"
    assert settings.dead_letter_queue_url == QUEUE_URL + "-dlq"
    assert settings.allow_loopback_document_urls is True


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("1", True), ("false", False), ("0", False)])
def test_loopback_flag_parses_booleans(make_env: EnvFactory, text: str, expected: bool) -> None:
    # Given ALLOW_LOOPBACK_DOCUMENT_URLS spelled as a boolean
    # When parsed, Then the flag follows it
    env = make_env(ALLOW_LOOPBACK_DOCUMENT_URLS=text)
    assert load_settings(env).allow_loopback_document_urls is expected


# --- CSV lists ------------------------------------------------------------------------------------


def test_account_ids_csv_is_trimmed_deduplicated_and_ordered(make_env: EnvFactory) -> None:
    # Given a comma-separated list with spaces, an empty item and a repeat
    env = make_env(ACCOUNT_IDS=f" {ACCOUNT} ,{OTHER_ACCOUNT},, {ACCOUNT} ,")

    # When parsed
    settings = load_settings(env, function="lister")

    # Then each id appears once, in first-seen order
    assert settings.account_ids == (ACCOUNT, OTHER_ACCOUNT)


def test_receiver_roles_csv_is_upper_cased_and_deduplicated(make_env: EnvFactory) -> None:
    # Given roles in mixed case with a repeat
    env = make_env(RECEIVER_ROLES="seller, Buyer ,SELLER,reseller")

    # When parsed
    settings = load_settings(env, function="lister")

    # Then they are the API's upper-case names, once each
    assert settings.receiver_roles == ("SELLER", "BUYER", "RESELLER")
    assert set(settings.receiver_roles) <= set(RECEIVER_ROLES)


def test_only_commas_in_receiver_roles_means_no_role_filter(make_env: EnvFactory) -> None:
    # Given RECEIVER_ROLES holding only separators
    # When parsed, Then no role filter is configured
    assert load_settings(make_env(RECEIVER_ROLES=" , ,"), function="lister").receiver_roles == ()


def test_document_host_suffixes_csv_is_lower_cased(make_env: EnvFactory) -> None:
    # Given two suffixes, one in upper case
    env = make_env(DOCUMENT_HOST_SUFFIXES=".S3.Amazonaws.COM , .example.test")

    # When parsed
    settings = load_settings(env, function="fetcher")

    # Then both are kept, lower-cased, in order
    assert settings.document_host_suffixes == (".s3.amazonaws.com", ".example.test")


def test_archive_prefix_loses_surrounding_slashes(make_env: EnvFactory) -> None:
    # Given a prefix written with leading and trailing slashes
    # When parsed, Then it is a bare key prefix
    settings = load_settings(make_env(ARCHIVE_PREFIX="/archive/invoices/"), function="fetcher")
    assert settings.archive_prefix == "archive/invoices"


# --- bad values: each names its variable ---------------------------------------------------------

BAD_VALUES = [
    ("LOOKBACK_PERIODS", "two"),
    ("LOOKBACK_PERIODS", "-1"),
    ("LOOKBACK_PERIODS", "61"),
    ("LOOKBACK_PERIODS", "1.5"),
    ("ACCOUNT_IDS", "12345"),
    ("ACCOUNT_IDS", f"{ACCOUNT},1234567890123"),
    ("ACCOUNT_IDS", "12345678901a"),
    ("RECEIVER_ROLES", "PAYER"),
    ("RECEIVER_ROLES", "SELLER,BUYERS"),
    ("ARCHIVE_PREFIX", "/"),
    ("ARCHIVE_PREFIX", "///"),
    ("ARCHIVE_PREFIX", ".."),
    ("ARCHIVE_PREFIX", "invoices/../other"),
    ("LEASE_SECONDS", "4"),
    ("LEASE_SECONDS", "43201"),
    ("DOWNLOAD_ATTEMPTS", "0"),
    ("DOWNLOAD_ATTEMPTS", "11"),
    ("INVOICING_MAX_ATTEMPTS", "0"),
    ("INVOICING_MAX_ATTEMPTS", "21"),
    ("MULTIPART_THRESHOLD_BYTES", "1048576"),
    ("MAX_DOCUMENT_BYTES", "1000"),
    ("MAX_DOCUMENT_BYTES", "two gigabytes"),
    ("MULTIPART_THRESHOLD_BYTES", "big"),
    ("DOCUMENT_HOST_SUFFIXES", ","),
    ("ALLOW_LOOPBACK_DOCUMENT_URLS", "maybe"),
    ("INVOICING_RATE_LIMIT", "-1"),
    ("INVOICING_RATE_LIMIT", "fast"),
    ("FETCHER_CONCURRENCY", "0"),
    ("FETCHER_CONCURRENCY", "11"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_bad_value_names_its_variable(make_env: EnvFactory, name: str, value: str) -> None:
    # Given one malformed variable in an otherwise complete environment
    env = make_env(**{name: value})

    # When parsed (with and without a function)
    for function in (None, "lister", "fetcher"):
        with pytest.raises(ConfigError) as caught:
            load_settings(env, function=function)

        # Then the message names the environment variable, not the Python field
        assert name in str(caught.value)
        assert str(caught.value).startswith("invalid configuration: ")


def test_bad_account_ids_are_listed_in_the_message(make_env: EnvFactory) -> None:
    # Given two bad ids among good ones
    env = make_env(ACCOUNT_IDS=f"{ACCOUNT},12345,abc")

    # When parsed, Then the message lists the offenders
    with pytest.raises(ConfigError, match=r"ACCOUNT_IDS: .*12345, abc"):
        load_settings(env)


def test_several_bad_values_are_all_named(make_env: EnvFactory) -> None:
    # Given three malformed variables
    env = make_env(LOOKBACK_PERIODS="-3", RECEIVER_ROLES="PAYER", ARCHIVE_PREFIX="a/../b")

    # When parsed
    with pytest.raises(ConfigError) as caught:
        load_settings(env)

    # Then one error names all three
    message = str(caught.value)
    for name in ("LOOKBACK_PERIODS", "RECEIVER_ROLES", "ARCHIVE_PREFIX"):
        assert name in message


def test_config_error_is_a_value_error() -> None:
    # Given / When / Then: callers that catch ValueError also catch configuration errors
    assert issubclass(ConfigError, ValueError)


def test_account_ids_reject_non_ascii_digits(make_env: EnvFactory) -> None:
    # Given an account id made of twelve fullwidth digits (Unicode category Nd, not ASCII)
    env = make_env(ACCOUNT_IDS=FULLWIDTH_ACCOUNT)

    # When parsed, Then it is refused: AWS account ids are twelve ASCII digits
    with pytest.raises(ConfigError, match="ACCOUNT_IDS"):
        load_settings(env, function="lister")


# --- missing required variables -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "required"),
    [("lister", ["LEDGER_TABLE", "INVOICE_QUEUE_URL"]), ("fetcher", ["ARCHIVE_BUCKET", "LEDGER_TABLE"])],
)
def test_missing_required_variables_are_named_per_function(
    make_env: EnvFactory, function: Function, required: list[str]
) -> None:
    # Given an empty environment
    # When parsed for the function
    with pytest.raises(ConfigError) as caught:
        load_settings({}, function=function)

    # Then exactly the function's required variables are named
    message = str(caught.value)
    assert function in message
    for name in required:
        assert name in message
    others = {v.name for v in ENV_VARS if v.required} - set(required)
    for name in others:
        assert name not in message


@pytest.mark.parametrize(
    ("function", "dropped"),
    [
        ("lister", "INVOICE_QUEUE_URL"),
        ("fetcher", "ARCHIVE_BUCKET"),
        ("fetcher", "LEDGER_TABLE"),
    ],
)
def test_each_missing_variable_is_named(make_env: EnvFactory, function: Function, dropped: str) -> None:
    # Given a complete environment with one required variable removed, and one with it set empty
    for env in (make_env(**{dropped: None}), make_env(**{dropped: ""})):
        # When parsed for the function that needs it
        with pytest.raises(ConfigError, match=f"set {dropped}$"):
            load_settings(env, function=function)


def test_a_variable_one_function_needs_is_not_required_by_the_other(make_env: EnvFactory) -> None:
    # Given no ARCHIVE_BUCKET (fetcher only) and no INVOICE_QUEUE_URL (lister only)
    # When parsed for the other function, Then it loads
    assert load_settings(make_env(ARCHIVE_BUCKET=None), function="lister").archive_bucket == ""
    assert load_settings(make_env(INVOICE_QUEUE_URL=None), function="fetcher").invoice_queue_url == ""


def test_no_function_means_no_required_check() -> None:
    # Given an empty environment, When parsed without a function, Then the defaults load
    assert load_settings({}) == Settings()


# --- the variable table ---------------------------------------------------------------------------


def test_env_var_names_per_function() -> None:
    # Given / When the variables each function reads
    # Then they are exactly the documented ones, in table order
    assert env_var_names("lister") == LISTER_VARS
    assert env_var_names("fetcher") == FETCHER_VARS


def test_every_env_var_maps_to_a_settings_field_and_back() -> None:
    # Given the variable table and the Settings model
    fields = set(Settings.model_fields)

    # Then every variable names an existing field, once, and every field has a variable
    assert all(var.field in fields for var in ENV_VARS), [v.field for v in ENV_VARS if v.field not in fields]
    assert len({var.field for var in ENV_VARS}) == len(ENV_VARS)
    assert len({var.name for var in ENV_VARS}) == len(ENV_VARS)
    assert {var.field for var in ENV_VARS} == fields
    # And every variable is read by some function, is upper case and documented
    for var in ENV_VARS:
        assert var.functions
        assert var.name == var.field.upper()
        assert var.doc.strip()


def test_each_variable_reaches_its_field(make_env: EnvFactory) -> None:
    # Given a valid sample value for every variable
    samples = {
        "ARCHIVE_BUCKET": "b",
        "ARCHIVE_PREFIX": "p",
        "LEDGER_TABLE": "t",
        "INVOICE_QUEUE_URL": "q",
        "LISTING_QUEUE_URL": "l",
        "LISTING_RESERVE_SECONDS": "7",
        "DEAD_LETTER_QUEUE_URL": "d",
        "ACCOUNT_IDS": ACCOUNT,
        "RECEIVER_ROLES": "BUYER",
        "SOURCE_ROLE_ARNS": f"arn:aws:iam::{OTHER_ACCOUNT}:role/invoice-archiver-reader",
        "SOURCE_EXTERNAL_ID": "archive-external-id",
        "DISCOVER_INVOICE_UNITS": "true",
        "LOOKBACK_PERIODS": "7",
        "INVOICING_REGION": "r",
        "LEASE_SECONDS": "77",
        "DOWNLOAD_ATTEMPTS": "7",
        "INVOICING_MAX_ATTEMPTS": "7",
        "MULTIPART_THRESHOLD_BYTES": str(7 * 1024 * 1024),
        "MAX_DOCUMENT_BYTES": str(7 * 1024 * 1024),
        "SPOOL_DIRECTORY": "/s",
        "DOCUMENT_HOST_SUFFIXES": ".h",
        "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
        "REVISIT_DAYS": "2,5",
        "EVENT_BUS_NAME": "invoices",
        "MISSING_INVOICE_DAY": "12",
        "UNSETTLED_AFTER_DAYS": "5",
        "INVOICING_RATE_LIMIT": "2.5",
        "FETCHER_CONCURRENCY": "3",
        "COST_DATA_EXPORT": "s3://cost-exports/cur2/",
        "RECONCILIATION_TOLERANCE": "0.05",
    }
    assert set(samples) == {var.name for var in ENV_VARS}

    # When parsed
    settings = load_settings(samples)

    # Then every field differs from its default: no variable is silently ignored
    defaults = Settings()
    for var in ENV_VARS:
        assert getattr(settings, var.field) != getattr(defaults, var.field), var.name


# --- incremental runs (issue 8) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1,3,7,30", (1, 3, 7, 30)), ("30, 7,7, 1", (1, 7, 30)), ("none", ()), ("NONE", ()), ("14", (14,))],
)
def test_revisit_days_parse_sorted_and_unique(
    make_env: EnvFactory, text: str, expected: tuple[int, ...]
) -> None:
    assert load_settings(make_env(REVISIT_DAYS=text)).revisit_days == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REVISIT_DAYS", "0"),
        ("REVISIT_DAYS", "401"),
        ("REVISIT_DAYS", "x"),
        ("MISSING_INVOICE_DAY", "29"),
        ("UNSETTLED_AFTER_DAYS", "0"),
    ],
)
def test_bad_incremental_settings_name_their_variable(make_env: EnvFactory, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(make_env(**{name: value}))


def test_incremental_defaults() -> None:
    defaults = Settings()
    assert defaults.revisit_days == (1, 3, 7, 30)
    assert defaults.event_bus_name == "default"
    assert defaults.missing_invoice_day == 10
    assert defaults.unsettled_after_days == 3


# --- the reconciler (issue 19) ----------------------------------------------------------------------


def test_the_reconciler_needs_the_export_and_reads_the_archive() -> None:
    # Given nothing but the archive's variables, When parsed for the reconciler, Then the export is asked for
    with pytest.raises(ConfigError, match=r"set COST_DATA_EXPORT$"):
        load_settings({"ARCHIVE_BUCKET": "b", "LEDGER_TABLE": "t"}, function="reconciler")
    # And it reads the archive's variables beside its own
    assert set(env_var_names("reconciler")) == {
        "ARCHIVE_BUCKET", "ARCHIVE_PREFIX", "LEDGER_TABLE", "ACCOUNT_IDS", "SOURCE_ROLE_ARNS",
        "COST_DATA_EXPORT", "RECONCILIATION_TOLERANCE",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COST_DATA_EXPORT", "https://bucket/prefix"),
        ("COST_DATA_EXPORT", "s3://bucket/a/../b"),
        ("COST_DATA_EXPORT", "/local/folder"),
        ("RECONCILIATION_TOLERANCE", "-0.01"),
        ("RECONCILIATION_TOLERANCE", "a cent"),
    ],
)
def test_a_bad_reconciler_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})
