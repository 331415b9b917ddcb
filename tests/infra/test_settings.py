"""Deployment settings: cdk.json and -c values are validated, and a bad one names its key."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import aws_cdk as cdk
import pytest
from infra_synth import REPO_ROOT, cdk_json_context

from app import build_app
from invoice_archiver.config import Settings
from invoice_archiver.infra.context import DeployConfigError, load_deploy_settings
from invoice_archiver.infra.settings import LOG_RETENTION_DAYS, DeploySettings


class Context:
    """Stands in for a construct node: what `-c key=value` / cdk.json would hold."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get_all_context(self) -> dict[str, Any]:
        return dict(self.values)


def test_cdk_json_lists_every_setting_with_the_models_default() -> None:
    # Given cdk.json's context and the settings model
    context = cdk_json_context()
    defaults = DeploySettings()
    # Then cdk.json documents every key (lease_seconds is derived unless set) with the model's default
    keys = set(DeploySettings.model_fields) - {"lease_seconds"}
    assert keys <= set(context)
    for key in keys:
        value = getattr(defaults, key)
        assert context[key] == (list(value) if isinstance(value, tuple) else value), key


def test_function_defaults_come_from_the_functions_settings() -> None:
    # Given the functions' own defaults, Then the stack's defaults are the same values
    functions, stack = Settings(), DeploySettings()
    assert stack.archive_prefix == functions.archive_prefix
    assert stack.lookback_periods == functions.lookback_periods
    assert stack.effective_lease_seconds == functions.lease_seconds
    assert stack.document_host_suffixes == functions.document_host_suffixes


def test_command_line_strings_are_parsed() -> None:
    # Given values as `-c key=value` passes them (strings)
    settings = load_deploy_settings(
        Context(
            {
                "account_ids": "111111111111, 222222222222",
                "receiver_roles": "seller",
                "kms_enabled": "true",
                "fetcher_timeout_seconds": "120",
                "alarm_email": "ops@example.com",
            }
        )
    )
    # Then they are typed
    assert settings.account_ids == ("111111111111", "222222222222")
    assert settings.receiver_roles == ("SELLER",)
    assert settings.kms_enabled is True
    assert settings.fetcher_timeout_seconds == 120
    assert settings.visibility_timeout_seconds == 720
    assert settings.effective_lease_seconds == 720


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("fetcher_timeout_seconds", "five minutes", "valid integer"),
        ("fetcher_timeout_seconds", "1200", "less than or equal to 900"),
        ("fetcher_max_concurrency", "1", "greater than or equal to 2"),
        ("account_ids", "12345", "not 12-digit account ids"),
        ("receiver_roles", "OWNER", "unknown receiver roles"),
        ("archive_prefix", "../x", "without '..'"),
        ("schedule_expression", "every month", "EventBridge expression"),
        ("log_retention_days", "100", "CloudWatch Logs"),
        ("alarm_email", "not-an-address", "e-mail address"),
        ("lifecycle_infrequent_access_days", "10", "30 days"),
        ("lifecycle_archive_days", "100", "at least 30 days after"),
        ("lease_seconds", "60", "at least fetcher_timeout_seconds"),
        ("lease_seconds", "5000", "visibility timeout"),
        ("kms_enabled", "maybe", "valid boolean"),
        ("region", "Europe", "pattern"),
        ("account", "12", "12-digit"),
        ("lookback_periods", "99", "less than or equal to 60"),
    ],
)
def test_a_bad_context_value_fails_with_a_message_naming_the_key(key: str, value: str, message: str) -> None:
    # Given one bad value
    # When the app is built from the context
    with pytest.raises(DeployConfigError) as caught:
        build_app(cdk.App(context={**cdk_json_context(), key: value}))
    # Then the synth stops, naming the key and the problem
    assert f"context key '{key}'" in str(caught.value)
    assert message in str(caught.value)


def test_log_retention_choices_are_all_mapped() -> None:
    from invoice_archiver.infra.log_retention import _RETENTION

    assert set(_RETENTION) == set(LOG_RETENTION_DAYS)


def test_cdk_json_runs_the_app_from_the_venv_and_writes_cdk_out() -> None:
    config = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert config["app"] == ".venv/bin/python app.py"
    assert config["output"] == "cdk.out"


# --- the context is validated whole: an unknown key fails, naming the closest valid one -------------


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("acount_ids", "did you mean account_ids?"),
        ("alarm-email", "did you mean alarm_email?"),
        ("Alarm_Email", "did you mean alarm_email?"),
        ("lease-seconds", "did you mean lease_seconds?"),
        ("kms_enable", "did you mean kms_enabled?"),
        ("zzz", "see docs/deploy.md for the keys"),
    ],
)
def test_an_unknown_context_key_is_refused_naming_the_closest_valid_key(key: str, suggestion: str) -> None:
    # Given cdk.json's context and one key this stack does not know (a typo, a dash for an underscore)
    context = {**cdk_json_context(), key: "x"}

    # When the settings are loaded, Then one message names the key and what it probably meant
    with pytest.raises(DeployConfigError) as caught:
        load_deploy_settings(Context(context))
    assert str(caught.value).startswith(f"unknown CDK context key '{key}' ({suggestion})")
    assert "\n" not in str(caught.value)


def test_the_cdks_own_context_keys_are_not_ours_to_refuse() -> None:
    context = {
        **cdk_json_context(),
        "aws:cdk:enable-path-metadata": True,
        "aws:cdk:bundling-stacks": ["**"],
        "@aws-cdk/core:newStyleStackSynthesis": True,
        "acknowledged-issue-numbers": [1],
        "cli-telemetry": False,
        "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a"],
        "cdk-nag": {"verbose": True},
        "aws-cdk-lib-setting": True,
    }
    assert load_deploy_settings(Context(context)).stack_name == "InvoiceArchiver"


def test_a_misspelt_key_stops_the_real_cdk_synth_in_one_line() -> None:
    # When the real CDK CLI synthesizes with a misspelt -c key
    cdk = REPO_ROOT / "node_modules" / ".bin" / "cdk"
    result = subprocess.run(
        [str(cdk), "synth", "--quiet", "--no-notices", "-c", "acount_ids=111111111111", "-o", "/tmp/cdk.bad"],
        cwd=REPO_ROOT,
        env={**os.environ, "CDK_DISABLE_VERSION_CHECK": "true", "CDK_DISABLE_CLI_TELEMETRY": "true"},
        capture_output=True,
        text=True,
        check=False,
    )

    # Then it fails, naming the key and the valid one, without a traceback
    assert result.returncode != 0
    assert "unknown CDK context key 'acount_ids' (did you mean account_ids?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert "jsii" not in result.stderr.lower()
