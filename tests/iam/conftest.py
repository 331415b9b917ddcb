"""The IAM replay tier: the real handlers' AWS requests, recorded on the sandbox and replayed against the
synthesized policies of two variants of the stack.

* `default`: cdk.json alone (the stack's own account is the one source);
* `kms-lock-payers`: the customer-managed key, Object Lock, another region, and several payers read
  through their roles (an ExternalId, invoice-unit discovery), as tests/infra's HARDENED variant plus
  the sources of tests/infra/test_source_grants.py's shape.

Each variant is synthesized in-process (tests/infra/infra_synth.py, the same app `cdk synth` runs; the
shipped tier replays the real CDK CLI's template), then recorded once per module.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
from aws_cdk.assertions import Template
from infra_synth import HARDENED, synth

from invoice_archiver.infra.context import load_deploy_settings
from invoice_archiver.infra.payer_role import PAYER_ROLE_STACK_NAME, PAYER_ROLE_STAGE
from invoice_archiver.infra.settings import DeploySettings
from invoice_archiver.sandbox.identity import ARCHIVE_ACCOUNT
from tests.iam import scenarios
from tests.iam.replay import Archive
from tests.iam.template import Deployed

SOURCES = f"{scenarios.payer_role(scenarios.PAYER)},{scenarios.payer_role(scenarios.OTHER_PAYER)}"
VARIANTS: dict[str, tuple[dict[str, Any], scenarios.Scenario]] = {
    "default": ({}, scenarios.OWN_ACCOUNT),
    "kms-lock-payers": (
        {
            **HARDENED,
            "account": ARCHIVE_ACCOUNT,
            "account_ids": "",
            "receiver_roles": "",
            "source_role_arns": SOURCES,
            "source_external_id": scenarios.EXTERNAL_ID,
            "discover_invoice_units": "true",
        },
        scenarios.SEVERAL_PAYERS,
    ),
}


@dataclass(frozen=True)
class Variant:
    name: str
    template: dict[str, Any]
    payer_template: dict[str, Any]
    settings: DeploySettings
    records: list[dict[str, Any]]

    def deployed(self, template: Mapping[str, Any] | None = None) -> Deployed:
        """The archive stack's template deployed in the sandbox's archive account."""
        return Deployed(
            dict(template or self.template),
            account=ARCHIVE_ACCOUNT,
            region=self.settings.region,
            stack_name=self.settings.stack_name,
            label="the archive stack",
        )

    def archive(
        self, template: Mapping[str, Any] | None = None, payer_template: Mapping[str, Any] | None = None
    ) -> Archive:
        return Archive(
            self.deployed(template),
            payer_template or self.payer_template,
            external_id=self.settings.source_external_id,
            discover_invoice_units=self.settings.discover_invoice_units,
        )


def synthesized(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], DeploySettings]:
    """(archive template, payer-role template, settings) of the app with cdk.json plus `overrides`."""
    synthesis = synth(overrides)
    payer = synthesis.stack.node.root.node.find_child(PAYER_ROLE_STAGE).node.find_child(PAYER_ROLE_STACK_NAME)
    payer_template: dict[str, Any] = Template.from_stack(payer).to_json()  # type: ignore[arg-type]
    return synthesis.template.to_json(), payer_template, load_deploy_settings(synthesis.stack.node)


@cache
def recorded(name: str) -> Variant:
    """A variant's templates, and the functions' requests recorded on the sandbox configured by it (once
    per process: the synthesis and the run take a few seconds each)."""
    overrides, scenario = VARIANTS[name]
    template, payer_template, settings = synthesized(overrides)
    shell = Variant(name, template, payer_template, settings, [])
    with tempfile.TemporaryDirectory(prefix=f"iam-replay-{name}-") as spool:
        records = scenarios.record(shell.deployed(), scenario, Path(spool))
    return Variant(name, template, payer_template, settings, records)


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request: pytest.FixtureRequest) -> Variant:
    return recorded(request.param)
