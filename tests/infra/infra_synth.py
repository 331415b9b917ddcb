"""Synthesis helpers for the CDK assertion tests: one synth per distinct configuration (jsii is slow)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
for path in (REPO_ROOT, REPO_ROOT / "src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from app import build_app  # noqa: E402
from invoice_archiver.infra.stack import InvoiceArchiverStack  # noqa: E402

# A variant that turns on everything optional: CMK, Object Lock, e-mail, explicit accounts and roles.
HARDENED = {
    "kms_enabled": True,
    "object_lock_enabled": True,
    "object_lock_retention_years": 7,
    "alarm_email": "billing-ops@example.com",
    "account_ids": "111111111111,222222222222",
    "receiver_roles": "SELLER,buyer",
    "account": "123456789012",
    "region": "eu-west-1",
}


def cdk_json_context() -> dict[str, Any]:
    """The context `cdk synth` passes to the app: feature flags and our defaults from cdk.json."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


@dataclass(frozen=True)
class Synth:
    stack: InvoiceArchiverStack
    template: Template

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.template.find_resources(cfn_type)
        return found

    def only(self, cfn_type: str, **props: Any) -> tuple[str, dict[str, Any]]:
        """The one resource of a type (whose Properties contain `props`), as (logical id, resource)."""
        matches = [
            (logical_id, resource)
            for logical_id, resource in self.resources(cfn_type).items()
            if all(resource.get("Properties", {}).get(k) == v for k, v in props.items())
        ]
        assert len(matches) == 1, f"expected one {cfn_type} with {props}, found {[m[0] for m in matches]}"
        return matches[0]

    def logical_id(self, prefix: str, cfn_type: str) -> str:
        ids = [logical_id for logical_id in self.resources(cfn_type) if logical_id.startswith(prefix)]
        assert len(ids) == 1, f"expected one {cfn_type} named {prefix}*, found {ids}"
        return ids[0]


@cache
def _synth(overrides: tuple[tuple[str, Any], ...]) -> Synth:
    app = cdk.App(context={**cdk_json_context(), **dict(overrides)})
    stack = build_app(app)
    return Synth(stack=stack, template=Template.from_stack(stack))


def synth(overrides: Mapping[str, Any] | None = None) -> Synth:
    """Synthesize the app with cdk.json's context plus `overrides` (cached per distinct overrides)."""
    return _synth(tuple(sorted((overrides or {}).items())))
