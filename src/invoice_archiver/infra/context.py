"""`cdk synth -c key=value`: the CDK context read whole into DeploySettings, or one line naming what to fix
(an unknown key with the closest valid one, a bad value with its key)."""

from __future__ import annotations

import difflib
import re
from typing import Any, Protocol

from pydantic import ValidationError

from invoice_archiver.config import Settings
from invoice_archiver.infra.settings import DeploySettings


class DeployConfigError(ValueError):
    """A context value is missing or malformed; the message names the key."""


class _ContextSource(Protocol):
    def get_all_context(self) -> dict[str, Any]: ...


# Context keys that belong to the CDK itself, not to this stack: feature flags and the CLI's own
# (`@aws-cdk/...`, `aws:cdk:...`, `aws-cdk:...`: every namespaced key has '@' or ':'), and these.
_CDK_KEYS = frozenset({"acknowledged-issue-numbers", "cli-telemetry"})
# Other CDK tools' settings, never one of ours (ours are snake_case): `cdk-nag...`, `aws-cdk...`.
_CDK_PREFIXES = ("cdk-", "aws-cdk")


def unknown_keys(context: dict[str, Any]) -> list[str]:
    """Context keys that are neither settings of this stack nor the CDK's own."""
    return sorted(
        key
        for key in context
        if key not in DeploySettings.model_fields
        and key not in _CDK_KEYS
        and "@" not in key
        and ":" not in key
        and not key.startswith(_CDK_PREFIXES)
    )


def _did_you_mean(key: str) -> str:
    candidates = list(DeploySettings.model_fields)
    normalized = key.strip().lower().replace("-", "_")
    if normalized in candidates:
        return f"did you mean {normalized}?"
    close = difflib.get_close_matches(normalized, candidates, n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else "see docs/deploy.md for the keys"


def load_deploy_settings(node: _ContextSource) -> DeploySettings:
    """Read every key of DeploySettings from the CDK context and validate it, whole: a key this stack
    does not know (a typo, a dash for an underscore) fails too, naming the closest valid key.

    The function-level values (account ids, receiver roles, prefix, retries...) are also run through
    invoice_archiver.config.Settings: the stack rejects exactly what the functions reject at cold start.
    """
    context = node.get_all_context()
    unknown = unknown_keys(context)
    if unknown:
        raise DeployConfigError(
            "unknown CDK context "
            + "; ".join(f"key '{key}' ({_did_you_mean(key)})" for key in unknown)
            + ' (set it in cdk.json under "context" or with -c key=value)'
        )
    raw = {key: context[key] for key in DeploySettings.model_fields if context.get(key) is not None}
    try:
        settings = DeploySettings(**raw)
    except ValidationError as exc:
        raise DeployConfigError(_describe(exc)) from None
    try:
        parsed = Settings(account_ids=settings.account_ids, **settings.function_values())
    except ValidationError as exc:
        raise DeployConfigError(_describe(exc)) from None
    # Keep the functions' normalized form (upper-case roles, de-duplicated accounts).
    return settings.model_copy(
        update={"account_ids": parsed.account_ids, "receiver_roles": parsed.receiver_roles}
    )


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"][:1]) or _key_in_message(error["msg"])
        message = error["msg"].removeprefix("Value error, ")
        if key and message.startswith(f"{key}: "):
            message = message.removeprefix(f"{key}: ")
        problems.append(f"context key '{key}': {message}" if key else message)
    return (
        "invalid CDK context: "
        + "; ".join(problems)
        + ' (set it in cdk.json under "context" or with -c key=value)'
    )


def _key_in_message(message: str) -> str:
    """Model-level checks name their key at the start of the message ("key: ...")."""
    match = re.match(r"^(?:Value error, )?([a-z_]+): ", message)
    return match.group(1) if match else ""
