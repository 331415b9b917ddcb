"""The payer-role template: the read-only role each payer account deploys for the archive to assume.

A second, small stack, synthesized beside the archive stack (`cdk.out/<name>.template.json`) and meant
for CloudFormation StackSets across an organization: everything that differs per deployment is a
CloudFormation parameter, the template has no asset, no bootstrap-version rule and no CDK metadata, so
it deploys without CDK or a bootstrap in the target accounts. The role

* trusts the archive stack's lister and fetcher roles only (`aws:PrincipalArn`, their fixed names
  `<stack>-<region>-lister` and `-fetcher`), with the ExternalId (`sts:ExternalId`): no other principal
  of the archive account may assume it, whatever its own policies allow;
* allows `invoicing:ListInvoiceSummaries` and `invoicing:GetInvoicePDF`, plus `aws-portal:ViewBilling`,
  which the Service Authorization Reference lists as authorized by both operations (the archive stack's
  own roles carry it for the same reason: see `permissions.INVOICING_WILDCARD_REASON`);
* allows `invoicing:ListInvoiceUnits` only when the `DiscoverInvoiceUnits` parameter is `true`
  (a separate inline policy behind a CloudFormation condition);
* allows nothing else: no managed policy, no other statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import CfnCondition, CfnOutput, CfnParameter, DefaultStackSynthesizer, Fn, Stack, Tags
from aws_cdk import aws_iam as iam
from constructs import Construct

from invoice_archiver.constants import SERVICE_NAME
from invoice_archiver.infra.constants import DEFAULT_REGION, DEFAULT_STACK_NAME, function_role_name
from invoice_archiver.infra.nag import acknowledge

PAYER_ROLE_STACK_NAME: Final = "InvoiceArchiverPayerRole"
# The app's stage holding it (cdk.out/assembly-PayerRole/): `cdk deploy` alone never selects it.
PAYER_ROLE_STAGE: Final = "PayerRole"
DEFAULT_PAYER_ROLE_NAME: Final = "invoice-archiver-reader"

READ_ACTIONS: Final = ("invoicing:ListInvoiceSummaries", "invoicing:GetInvoicePDF", "aws-portal:ViewBilling")
DISCOVERY_ACTIONS: Final = ("invoicing:ListInvoiceUnits",)

PAYER_ROLE_WILDCARD_REASON: Final = (
    "invoicing:ListInvoiceSummaries, invoicing:GetInvoicePDF, invoicing:ListInvoiceUnits and "
    "aws-portal:ViewBilling support no resource-level permissions (Service Authorization Reference, "
    "'AWS Invoicing Service'): the Resource element must be '*'. Read-only billing actions; the role "
    "can be assumed only by the archive account, with the ExternalId."
)


class Param:
    """The template's parameter names (StackSets pass them with --parameters)."""

    ARCHIVE_ACCOUNT_ID: Final = "ArchiveAccountId"
    ARCHIVE_STACK_NAME: Final = "ArchiveStackName"
    ARCHIVE_REGION: Final = "ArchiveRegion"
    EXTERNAL_ID: Final = "ExternalId"
    ROLE_NAME: Final = "RoleName"
    DISCOVER_INVOICE_UNITS: Final = "DiscoverInvoiceUnits"


class PayerRoleStack(Stack):
    """One IAM role, parameterized, for CloudFormation StackSets."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description=(
                "invoice-archiver payer role: lets the archive account read this account's invoices "
                "(ListInvoiceSummaries, GetInvoicePDF; ListInvoiceUnits if discovery is on)"
            ),
            # StackSets deploy the template as it is: no bootstrap stack exists in member accounts.
            synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
            analytics_reporting=False,
            **kwargs,
        )
        Tags.of(self).add("service", SERVICE_NAME)
        params = self._parameters()
        discovery_on = CfnCondition(
            self, "DiscoveryOn", expression=Fn.condition_equals(params.discover.value_as_string, "true")
        )
        self.role = self._role(params)
        cfn_role = self.role.node.default_child
        assert isinstance(cfn_role, iam.CfnRole)
        cfn_role.override_logical_id("PayerRole")  # stable across CDK versions: StackSets update in place
        discovery = self._discovery_policy()
        discovery.cfn_options.condition = discovery_on
        CfnOutput(self, "RoleArn", value=self.role.role_arn, description="One entry of SOURCE_ROLE_ARNS")
        acknowledge(self.role, "AwsSolutions-IAM5", PAYER_ROLE_WILDCARD_REASON, findings=("Resource::*",))
        acknowledge(discovery, "AwsSolutions-IAM5", PAYER_ROLE_WILDCARD_REASON, findings=("Resource::*",))

    def _parameters(self) -> _Parameters:
        """What a StackSet fills in for each member account."""
        archive_account = CfnParameter(
            self,
            Param.ARCHIVE_ACCOUNT_ID,
            type="String",
            allowed_pattern=r"^\d{12}$",
            constraint_description="a 12-digit AWS account id",
            description="The account the invoice-archiver stack runs in; only it may assume the role.",
        )
        archive_stack = CfnParameter(
            self,
            Param.ARCHIVE_STACK_NAME,
            type="String",
            default=DEFAULT_STACK_NAME,
            allowed_pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$",
            constraint_description="a CloudFormation stack name",
            description="The archive stack's name: its functions' roles are <name>-<region>-lister/-fetcher.",
        )
        archive_region = CfnParameter(
            self,
            Param.ARCHIVE_REGION,
            type="String",
            default=DEFAULT_REGION,
            allowed_pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
            constraint_description="an AWS region name",
            description="The region the archive stack is deployed in.",
        )
        external_id = CfnParameter(
            self,
            Param.EXTERNAL_ID,
            type="String",
            no_echo=True,
            min_length=2,
            max_length=1224,
            allowed_pattern=r"^[\w+=,.@:/-]+$",
            constraint_description="2-1224 characters of [A-Za-z0-9_+=,.@:/-] (sts:ExternalId)",
            description="The ExternalId the archiver sends (its SOURCE_EXTERNAL_ID).",
        )
        role_name = CfnParameter(
            self,
            Param.ROLE_NAME,
            type="String",
            default=DEFAULT_PAYER_ROLE_NAME,
            allowed_pattern=r"^[\w+=,.@-]{1,64}$",
            constraint_description="an IAM role name (1-64 characters of [A-Za-z0-9_+=,.@-])",
            description="Name of the role; the same in every account keeps SOURCE_ROLE_ARNS regular.",
        )
        discover = CfnParameter(
            self,
            Param.DISCOVER_INVOICE_UNITS,
            type="String",
            default="false",
            allowed_values=["true", "false"],
            description="true: also allow invoicing:ListInvoiceUnits (DISCOVER_INVOICE_UNITS=true).",
        )
        return _Parameters(archive_account, archive_stack, archive_region, external_id, role_name, discover)

    def _role(self, params: _Parameters) -> iam.Role:
        archive_account, archive_stack, archive_region = (
            params.archive_account,
            params.archive_stack,
            params.archive_region,
        )
        external_id, role_name = params.external_id, params.role_name
        return iam.Role(
            self,
            "Role",
            role_name=role_name.value_as_string,
            description="invoice-archiver: read-only access to this account's invoices",
            # The account is the principal and aws:PrincipalArn narrows it to the two roles: a role ARN
            # as principal would need the roles to exist when this template is deployed, and becomes an
            # opaque id if they are ever replaced; a condition on their (fixed) names does neither.
            assumed_by=iam.AccountPrincipal(archive_account.value_as_string).with_conditions(
                {
                    "StringEquals": {"sts:ExternalId": external_id.value_as_string},
                    "ArnEquals": {
                        "aws:PrincipalArn": [
                            _function_role_arn(archive_account, archive_stack, archive_region, function)
                            for function in ("lister", "fetcher")
                        ]
                    },
                }
            ),
            inline_policies={
                "ReadInvoices": iam.PolicyDocument(
                    minimize=False,
                    statements=[
                        iam.PolicyStatement(
                            sid="ReadInvoices",
                            actions=list(READ_ACTIONS),
                            resources=["*"],  # no resource-level permissions: PAYER_ROLE_WILDCARD_REASON
                        )
                    ],
                )
            },
        )

    def _discovery_policy(self) -> iam.CfnRolePolicy:
        return iam.CfnRolePolicy(
            self,
            "DiscoverInvoiceUnitsPolicy",
            role_name=self.role.role_name,
            policy_name="DiscoverInvoiceUnits",
            policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ListInvoiceUnits",
                        "Effect": "Allow",
                        "Action": list(DISCOVERY_ACTIONS),
                        "Resource": "*",
                    }
                ],
            },
        )


@dataclass(frozen=True)
class _Parameters:
    archive_account: CfnParameter
    archive_stack: CfnParameter
    archive_region: CfnParameter
    external_id: CfnParameter
    role_name: CfnParameter
    discover: CfnParameter


def _function_role_arn(
    account: CfnParameter, stack_name: CfnParameter, region: CfnParameter, function: str
) -> str:
    """The ARN of an archive function's role, from its fixed name (infra/constants.function_role_name)."""
    name = function_role_name("${StackName}", "${Region}", function)
    return Fn.sub(
        "arn:${AWS::Partition}:iam::${Account}:role/" + name,
        {
            "Account": account.value_as_string,
            "StackName": stack_name.value_as_string,
            "Region": region.value_as_string,
        },
    )
