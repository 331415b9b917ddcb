"""CDK assertion fixtures: each configuration is synthesized once per session (jsii startup is slow)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from infra_synth import HARDENED, Synth, synth


@pytest.fixture(scope="session")
def default() -> Synth:
    """The stack as `cdk synth` builds it from cdk.json alone."""
    return synth()


@pytest.fixture(scope="session")
def hardened() -> Synth:
    """The stack with the CMK, Object Lock and every optional setting on."""
    return synth(HARDENED)


@pytest.fixture(scope="session")
def synth_with() -> Callable[[Mapping[str, Any]], Synth]:
    return synth
