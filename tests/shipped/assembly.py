"""What `cdk synth` ships for each function, read from the cloud assembly (cdk.out) alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoice_archiver.infra.constants import DEFAULT_STACK_NAME, OutputKey


@dataclass(frozen=True)
class ShippedFunction:
    name: str
    handler: str
    runtime: str
    environment: dict[str, Any]  # as in the template: strings, or intrinsics to resolve
    code: Path  # the code asset folder
    own_layers: list[Path]  # the stack's own layer assets, in the function's layer order
    external_layers: list[str]  # layer ARNs from elsewhere (the Powertools layer)


@dataclass(frozen=True)
class Assembly:
    template: dict[str, Any]
    functions: dict[str, ShippedFunction]  # "lister", "fetcher"

    def resource(self, logical_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.template["Resources"][logical_id]
        return resource


def read(cdk_out: Path, stack: str = DEFAULT_STACK_NAME) -> Assembly:
    template = json.loads((cdk_out / f"{stack}.template.json").read_text())
    assets = json.loads((cdk_out / f"{stack}.assets.json").read_text())["files"]
    by_key = {
        destination["objectKey"]: cdk_out / asset["source"]["path"]
        for asset in assets.values()
        for destination in asset["destinations"].values()
    }
    resources = template["Resources"]

    def asset_dir(s3_key: Any) -> Path:
        path = by_key[s3_key]
        assert path.is_dir(), f"asset {s3_key} is not a folder in {cdk_out}"
        return path

    functions = {}
    for name, output in (("lister", OutputKey.LISTER_FUNCTION), ("fetcher", OutputKey.FETCHER_FUNCTION)):
        logical_id = template["Outputs"][output]["Value"]["Ref"]
        props = resources[logical_id]["Properties"]
        own, external = [], []
        for layer in props.get("Layers", []):
            if isinstance(layer, dict):
                layer_props = resources[layer["Ref"]]["Properties"]
                own.append(asset_dir(layer_props["Content"]["S3Key"]))
            else:
                external.append(layer)
        functions[name] = ShippedFunction(
            name=name,
            handler=props["Handler"],
            runtime=props["Runtime"],
            environment=props["Environment"]["Variables"],
            code=asset_dir(props["Code"]["S3Key"]),
            own_layers=own,
            external_layers=external,
        )
    return Assembly(template=template, functions=functions)


def resolve_environment(
    assembly: Assembly, function: ShippedFunction, replacements: dict[str, str]
) -> dict[str, str]:
    """The function's environment with every CloudFormation reference replaced by a sandbox resource.

    `replacements` maps a resource type, a queue's logical-id prefix or a pseudo parameter to the value
    that stands for it locally; a reference the test does not know fails loudly.
    """
    resolved = {}
    for name, value in function.environment.items():
        if isinstance(value, str):
            resolved[name] = value
            continue
        assert set(value) == {"Ref"}, f"{name}: unexpected intrinsic {value}"
        target = value["Ref"]
        if target.startswith("AWS::"):
            resolved[name] = replacements[target]
            continue
        resource_type = assembly.resource(target)["Type"]
        if resource_type == "AWS::SQS::Queue":
            prefix = next(p for p in replacements if p.startswith("Pipeline") and target.startswith(p))
            resolved[name] = replacements[prefix]
        else:
            resolved[name] = replacements[resource_type]
    return resolved
