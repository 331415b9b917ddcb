#!/usr/bin/env python3
"""CDK app: `npx --no-install cdk synth` / `cdk deploy -c key=value`. Works offline, without credentials."""

from __future__ import annotations

import sys
from pathlib import Path

# The package lives in src/; importable without `pip install -e .` too.
_FUNCTIONS = str(Path(__file__).resolve().parent / "src")
if _FUNCTIONS not in sys.path:
    sys.path.insert(0, _FUNCTIONS)

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from invoice_archiver.infra import sdk_layer  # noqa: E402
from invoice_archiver.infra.context import DeployConfigError, load_deploy_settings  # noqa: E402
from invoice_archiver.infra.payer_role import (  # noqa: E402
    PAYER_ROLE_STACK_NAME,
    PAYER_ROLE_STAGE,
    PayerRoleStack,
)
from invoice_archiver.infra.stack import InvoiceArchiverStack  # noqa: E402


def build_app(app: cdk.App) -> InvoiceArchiverStack:
    """Add the stack, configured from the app's context, the payer-role template, and cdk-nag's checks."""
    settings = load_deploy_settings(app.node)
    stack = InvoiceArchiverStack(
        app,
        settings.stack_name,
        settings=settings,
        # Region from context (default us-east-1, where the Invoicing API lives); account only if
        # given: no credentials or STS lookup are needed to synthesize.
        env=cdk.Environment(account=settings.account or None, region=settings.region),
    )
    # The read-only role each payer account deploys (StackSets): its own template, all parameters. In a
    # stage of its own, so `cdk deploy` without a stack name still selects only the archive stack; the
    # template lands in cdk.out/assembly-PayerRole/.
    payer = cdk.Stage(app, PAYER_ROLE_STAGE)
    PayerRoleStack(payer, PAYER_ROLE_STACK_NAME, stack_name=PAYER_ROLE_STACK_NAME)
    cdk.Validations.of(payer).add_plugins(AwsSolutionsChecks(payer, verbose=True))
    # cdk-nag v3 is a policy-validation plugin: any unacknowledged finding fails the synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack


def main() -> None:
    app = cdk.App()
    try:
        build_app(app)
        app.synth()
    except DeployConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception:
        if not sdk_layer.FAILURES:
            raise
        print(f"error: {sdk_layer.FAILURES[-1]}", file=sys.stderr)  # not the jsii traceback around it
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
