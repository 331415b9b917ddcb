"""What a deployed stack tells the CLI: its CloudFormation outputs and its functions' configuration."""

from __future__ import annotations

from functools import cache
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from invoice_archiver.cli.errors import CliError, endpoint_hint
from invoice_archiver.dal import clients


@cache
def _client(service: str) -> Any:
    return clients.session().client(service, config=Config(retries={"mode": "standard"}))  # type: ignore[call-overload]


def stack_outputs(stack: str) -> dict[str, str]:
    try:
        described = _client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
            raise CliError(
                f"stack {stack} not found ({endpoint_hint()}): check --stack, AWS_REGION and AWS_PROFILE"
            ) from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", []) if "OutputKey" in o}


def function_configuration(name: str | None) -> tuple[dict[str, Any], str]:
    """A function's configuration, or {} and why it cannot be read (then the environment's settings apply)."""
    if not name:
        return {}, ""
    try:
        config: dict[str, Any] = dict(_client("lambda").get_function_configuration(FunctionName=name))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return {}, f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    return config, ""
