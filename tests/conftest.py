"""Shared fixtures: fake credentials first, then a started sandbox (moto + Invoicing emulator)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from invoice_archiver.sandbox.dataset import Dataset, generate
from invoice_archiver.sandbox.runner import Sandbox

SMALL_DATASET = generate(seed=7, invoices_per_account_period=6, document_size=2048, supplemental=(0, 2))


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region before any client exists; no real endpoint configuration leaks in."""
    for name in os.environ:
        if name.startswith("AWS_ENDPOINT_URL") or name in (
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")


@pytest.fixture
def make_sandbox(aws_credentials: None) -> Iterator[Callable[..., Sandbox]]:
    """Factory: ``make_sandbox(dataset=..., faults=..., url_lifetime_seconds=...)`` -> a started Sandbox."""
    started: list[Sandbox] = []

    def factory(dataset: Dataset | None = None, **kwargs: Any) -> Sandbox:
        box = Sandbox(
            dataset if dataset is not None else SMALL_DATASET, use_existing_endpoints=False, **kwargs
        )
        started.append(box.start())
        return box

    yield factory
    for box in reversed(started):
        box.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """A started sandbox over a small deterministic dataset (3 accounts x 3 periods x 6 invoices)."""
    return make_sandbox()
