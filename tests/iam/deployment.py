"""The archive stack as deployed, for the replay: its resources by the names requests carry, each function's
role and each source role (the payer-role template deployed in the role's account), and what Lambda itself
does with a function's role (read from the template).

Lambda's own use of the role: the SQS event source mapping polls its queue (sqs:ReceiveMessage,
sqs:DeleteMessage, sqs:GetQueueAttributes, and kms:Decrypt on a queue under a customer-managed key),
Lambda writes the function's logs, and active tracing sends X-Ray segments (AWS Lambda Developer Guide:
"Lambda execution role", "Using Lambda with Amazon SQS").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from invoice_archiver.constants import FETCHER_HANDLER, LISTER_HANDLER
from tests.iam.actions import Need, Target
from tests.iam.policy import Statement
from tests.iam.template import Deployed, TemplateError

HANDLERS = {"lister": LISTER_HANDLER, "fetcher": FETCHER_HANDLER}
PAYER_ROLE = "PayerRole"  # the payer-role template's role (infra/payer_role.py)


@dataclass(frozen=True)
class Principal:
    arn: str
    account: str
    deployed: Deployed
    role: str  # logical id in `deployed`
    label: str  # "the fetcher's role", "payer role arn:..."


class Archive:
    """The archive stack deployed in `account`/`region`, and each source role's payer-role stack."""

    def __init__(
        self,
        stack: Deployed,
        payer_template: Mapping[str, Any] | None = None,
        *,
        external_id: str = "",
        discover_invoice_units: bool = False,
    ) -> None:
        self.stack = stack
        self.region = stack.region
        self.account = stack.account
        self.payer_template = payer_template
        self.external_id = external_id
        self.discover = discover_invoice_units
        self._payers: dict[str, Deployed] = {}
        self._policies: dict[tuple[int, str, str], list[Statement]] = {}

    # Principals -------------------------------------------------------------------------------------

    def function_principal(self, function: str) -> Principal:
        role = self.stack.function_role(HANDLERS[function])
        return Principal(self.stack.arn(role), self.account, self.stack, role, f"the {function}'s role")

    def payer(self, role_arn: str) -> Deployed:
        """The payer-role template as deployed for `role_arn`: in its account, named as the ARN says,
        trusting this archive stack with its ExternalId."""
        if role_arn not in self._payers:
            if self.payer_template is None:
                raise TemplateError(f"a call went through {role_arn}, but no payer-role template was given")
            account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
            known = self.payer_template.get("Parameters", {})
            values = {
                "ArchiveAccountId": self.account,
                "ExternalId": self.external_id,
                "RoleName": name,
                "DiscoverInvoiceUnits": "true" if self.discover else "false",
                "ArchiveStackName": self.stack.stack_name,
                "ArchiveRegion": self.region,
            }
            self._payers[role_arn] = Deployed(
                dict(self.payer_template),
                account=account,
                region="us-east-1",
                stack_name="InvoiceArchiverPayerRole",
                parameters={k: v for k, v in values.items() if k in known},
                label=f"the payer-role stack in {account}",
            )
        return self._payers[role_arn]

    def principal_for(self, record: Mapping[str, Any]) -> Principal:
        if record.get("principal") is None:
            return self.function_principal(record["function"])
        arn = str(record["principal"])
        payer = self.payer(arn)
        if payer.arn(PAYER_ROLE) != arn:
            raise TemplateError(f"the payer-role stack's role would be {payer.arn(PAYER_ROLE)}, not {arn}")
        return Principal(arn, payer.account, payer, PAYER_ROLE, f"payer role {arn}")

    def identity(self, principal: Principal) -> list[Statement]:
        key = (id(principal.deployed), principal.role, "identity")
        if key not in self._policies:
            self._policies[key] = principal.deployed.role_policies(principal.role)
        return self._policies[key]

    def resource_policy(self, need: Need) -> list[Statement]:
        owner, logical_id = need.target.owner, need.target.logical_id
        if owner is None or logical_id is None:
            return []
        kind = "trust" if need.mode == "trust" else "resource"
        key = (id(owner), logical_id, kind)
        if key not in self._policies:
            found = owner.trust_policy(logical_id) if kind == "trust" else owner.resource_policy(logical_id)
            self._policies[key] = found
        return self._policies[key]

    # Where (tests/iam/actions.py) ------------------------------------------------------------------

    def _target(self, cfn_type: str, name: str, what: str) -> Target:
        logical_id = self.stack.logical_id_of(cfn_type, name)
        if logical_id is None:
            raise TemplateError(f"{what} {name!r} is not a resource of the stack")
        return Target(self.stack.arn(logical_id), self.stack, logical_id, self.account)

    def bucket(self, name: str) -> Target:
        return self._target("AWS::S3::Bucket", name, "bucket")

    def queue(self, url: str) -> Target:
        return self._target("AWS::SQS::Queue", url.rstrip("/").rsplit("/", 1)[-1], "queue")

    def table(self, name: str, index: str | None) -> Target:
        table = self._target("AWS::DynamoDB::Table", name, "table")
        if not index:
            return table
        return Target(f"{table.arn}/index/{index}", table.owner, table.logical_id, table.account)

    def bus(self, name: str) -> Target:
        if name.startswith("arn:"):
            return Target(name, None, None, name.split(":")[4])
        return Target(
            f"arn:aws:events:{self.region}:{self.account}:event-bus/{name}", None, None, self.account
        )

    def role(self, arn: str) -> Target:
        payer = self.payer(arn)
        return Target(arn, payer, PAYER_ROLE, payer.account)

    def key_of(self, target: Target) -> Target | None:
        owner, logical_id = target.owner, target.logical_id
        if not isinstance(owner, Deployed) or logical_id is None:
            return None
        key = owner.key_of(logical_id)
        return None if key is None else Target(owner.arn(key), owner, key, owner.account)

    def bucket_key_enabled(self, target: Target) -> bool:
        owner = target.owner
        return (
            isinstance(owner, Deployed)
            and target.logical_id is not None
            and owner.bucket_key_enabled(target.logical_id)
        )

    # What Lambda does with the role ----------------------------------------------------------------

    def lambda_needs(self, function: str) -> list[tuple[Need, str]]:
        """(need, reason): what Lambda itself does with the function's role, read from the template."""
        stack = self.stack
        logical_id, resource = stack.function(HANDLERS[function])
        props = resource["Properties"]
        found: list[tuple[Need, str]] = []
        log_group = props.get("LoggingConfig", {}).get("LogGroup")
        if isinstance(log_group, dict) and "Ref" in log_group:
            group = stack.name(log_group["Ref"])
            stream = f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}:log-stream:x"
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                found.append(
                    (
                        Need(
                            action,
                            Target(stream, None, None, self.account),
                            "same-account",
                            "Lambda writes the function's logs",
                        ),
                        "Lambda writes the function's logs with its role",
                    )
                )
        if props.get("TracingConfig", {}).get("Mode") == "Active":
            for action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords"):
                found.append(
                    (
                        Need(action, Target("*"), "same-account", "active tracing"),
                        "active X-Ray tracing: Lambda and the X-Ray SDK send segments with the role",
                    )
                )
        for mapping in stack.resources.values():
            mapping_props = mapping.get("Properties", {})
            if mapping["Type"] != "AWS::Lambda::EventSourceMapping" or mapping_props.get("FunctionName") != {
                "Ref": logical_id
            }:
                continue
            queue = mapping_props["EventSourceArn"]["Fn::GetAtt"][0]
            target = Target(stack.arn(queue), stack, queue, self.account)
            why = f"Lambda's SQS event source mapping polls {queue} with the function's role"
            for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
                found.append((Need(action, target, "same-account", "event source mapping"), why))
            key = self.key_of(target)
            if key is not None:
                context = {
                    "kms:ViaService": f"sqs.{self.region}.amazonaws.com",
                    "kms:CallerAccount": self.account,
                    "kms:EncryptionContext:aws:sqs:arn": target.arn,
                }
                found.append(
                    (
                        Need(
                            "kms:Decrypt", key, "kms", "event source mapping on an encrypted queue", context
                        ),
                        why + " (encrypted)",
                    )
                )
        return found


def names_from_environments(
    template: Mapping[str, Any], environments: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The physical names a run gave the stack's resources, read off the functions' environments: each
    variable the template sets to a resource's Ref (a queue by its URL's last segment). `environments`
    maps a function's logical id to the environment it ran with."""
    resources = template["Resources"]
    names: dict[str, str] = {}
    for function, environment in environments.items():
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        for variable, value in variables.items():
            target = value.get("Ref") if isinstance(value, dict) else None
            if target in resources and variable in environment:
                given = environment[variable]
                queue = resources[target]["Type"] == "AWS::SQS::Queue"
                names[target] = given.rstrip("/").rsplit("/", 1)[-1] if queue else given
    return names
