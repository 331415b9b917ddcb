"""The first decorator of every handler: parse and validate the environment once, at cold start."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from invoice_archiver.config import Function, Settings, load_settings

_settings: dict[Function, Settings] = {}
Handler = TypeVar("Handler", bound=Callable[..., Any])


def settings(function: Function) -> Settings:
    """The function's settings, parsed on first use and kept for the life of the container."""
    if function not in _settings:
        _settings[function] = load_settings(function=function)
    return _settings[function]


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
