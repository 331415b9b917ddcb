"""The first decorator of every handler: parse and validate the environment once, at cold start."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypedDict, TypeVar

from invoice_archiver.config import Settings, load_settings
from invoice_archiver.env_vars import Function
from invoice_archiver.models.source import role_arns

_settings: dict[Function, Settings] = {}
Handler = TypeVar("Handler", bound=Callable[..., Any])


def settings(function: Function) -> Settings:
    """The function's settings, parsed on first use and kept for the life of the container."""
    if function not in _settings:
        _settings[function] = load_settings(function=function)
    return _settings[function]


class SourceOptions(TypedDict):
    external_id: str
    allowed_roles: tuple[str, ...]
    region: str
    max_attempts: int
    calls_per_second: float


def source_options(config: Settings) -> SourceOptions:
    """How the function reads the Invoicing API for a source (dal.sources.invoicing_for[_role]): only
    the configured roles, with the ExternalId, at the function's pace and retries."""
    return {
        "external_id": config.source_external_id,
        "allowed_roles": role_arns(config.source_role_arns),
        "region": config.invoicing_region,
        "max_attempts": config.invoicing_max_attempts,
        "calls_per_second": config.invoicing_rate_limit,
    }


def reset() -> None:
    """Forget the parsed settings (for tests and the local runner, which change the environment)."""
    _settings.clear()


def init_environment(function: Function) -> Callable[[Handler], Handler]:
    """Fail the invocation at once, with a message naming the variable, if the configuration is bad."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            settings(function)
            return handler(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
