"""Each function's environment, built from invoice_archiver.env_vars.ENV_VARS (the single source of truth)."""

from __future__ import annotations

from collections.abc import Mapping

from invoice_archiver.constants import METRICS_NAMESPACE, SERVICE_NAME
from invoice_archiver.env_vars import ENV_VARS, Function
from invoice_archiver.infra.constants import LOCAL_ONLY_ENV_VARS


class StackEnvironmentError(ValueError):
    """The stack tried to set a variable no function reads, or left a required one unset."""


def function_environment(
    function: Function, values: Mapping[str, str], *, log_level: str, tracing: bool = True
) -> dict[str, str]:
    """The env vars of one function: every variable it reads (by ENV_VARS), plus Powertools' own.

    `values` maps invoice_archiver.config field names to strings; it may hold fields of other functions (one
    mapping serves both). Every variable the function reads must have a value, except the local-only
    switches in LOCAL_ONLY_ENV_VARS, which are never set in AWS. An empty string means "the function's
    default" (invoice_archiver.config.load_settings ignores empty values).
    """
    known = {var.field for var in ENV_VARS}
    unknown = sorted(set(values) - known)
    if unknown:
        raise StackEnvironmentError(f"not in invoice_archiver.env_vars.ENV_VARS: {', '.join(unknown)}")
    environment: dict[str, str] = {}
    for var in ENV_VARS:
        if function not in var.functions or var.name in LOCAL_ONLY_ENV_VARS:
            continue
        if var.field not in values:
            raise StackEnvironmentError(f"the stack sets no value for {var.name}, which the {function} reads")
        value = values[var.field]
        if var.required and value == "":
            raise StackEnvironmentError(f"{var.name} is required by the {function} and must not be empty")
        environment[var.name] = value
    environment.update(powertools_environment(function, log_level))
    if not tracing:  # Powertools' Tracer (and the X-Ray SDK's import) stays out of every cold start
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    return environment


def powertools_environment(function: Function, log_level: str) -> dict[str, str]:
    """What the Powertools utilities read themselves (service dimension, namespace, log level)."""
    del function  # one service name for both functions: the metrics share the `service` dimension
    return {
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": log_level,
    }
