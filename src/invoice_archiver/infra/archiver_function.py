"""One of the archive's Lambda functions: its log group, its role (a fixed name, no managed policy), the
function on arm64 with the shared code asset and layers, and its one explicit inline policy.

IAM choice: explicit statements in one inline policy per function (`<Fn>Permissions`), each with a Sid,
rather than `grant_*` helpers, whose action lists are wider than what the functions call (see
docs/decisions.md). The only permissions CDK adds by itself, into the role's DefaultPolicy, are
the SQS event source's consume permissions and X-Ray's PutTraceSegments/PutTelemetryRecords.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from invoice_archiver.env_vars import Function
from invoice_archiver.infra import checkov
from invoice_archiver.infra.constants import POWERTOOLS_LAYER_ARN_FORMAT
from invoice_archiver.infra.log_retention import retention
from invoice_archiver.infra.nag import acknowledge, arn_finding
from invoice_archiver.infra.settings import DeploySettings

XRAY_WILDCARD_REASON = (
    "xray:PutTraceSegments and xray:PutTelemetryRecords (added by CDK for active tracing) support no "
    "resource-level permissions."
)
LOG_STREAM_WILDCARD_REASON = (
    "Scoped to the function's own log group; ':*' covers its log streams, whose names Lambda generates."
)


def powertools_layer_arn(*, partition: str, region: str, python_runtime: str, version: int) -> str:
    """ARN of the Powertools V3 arm64 layer AWS publishes for this region and Python version."""
    return POWERTOOLS_LAYER_ARN_FORMAT.format(
        partition=partition,
        region=region,
        python_version=python_runtime.replace(".", ""),
        version=version,
    )


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between the functions; everything else is shared."""

    construct_id: str
    function: Function
    handler: str
    description: str
    timeout: int
    memory: int
    ephemeral_mib: int
    environment: dict[str, str]


@dataclass(frozen=True)
class Package:
    """What every function runs: the runtime, the code asset and the layers, in Lambda's import order."""

    runtime: lambda_.Runtime
    code: lambda_.Code
    layers: list[lambda_.ILayerVersion]


def archiver_function(
    scope: Construct,
    spec: FunctionSpec,
    package: Package,
    settings: DeploySettings,
    key: kms.IKey | None,
) -> lambda_.Function:
    log_group = logs.LogGroup(
        scope,
        f"{spec.construct_id}LogGroup",
        retention=retention(settings.log_retention_days),
        encryption_key=key,
        removal_policy=RemovalPolicy.DESTROY,
    )
    role = iam.Role(
        scope,
        f"{spec.construct_id}Role",
        role_name=settings.role_name(spec.function),
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"invoice-archiver {spec.function}: least privilege, no managed policies",
    )
    fn = lambda_.Function(
        scope,
        spec.construct_id,
        description=spec.description,
        runtime=package.runtime,
        architecture=lambda_.Architecture.ARM_64,
        handler=spec.handler,
        code=package.code,
        layers=package.layers,
        timeout=Duration.seconds(spec.timeout),
        memory_size=spec.memory,
        ephemeral_storage_size=Size.mebibytes(spec.ephemeral_mib),
        environment=spec.environment,
        environment_encryption=key,
        role=role,
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        tracing=lambda_.Tracing.ACTIVE if settings.tracing_enabled else lambda_.Tracing.DISABLED,
    )
    _acknowledge_findings(fn, spec.function, log_group, key)
    write_logs = iam.PolicyStatement(
        sid="WriteOwnLogs",
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[f"{log_group.log_group_arn}:*"],
    )
    add_statements(scope, fn, spec.function, [write_logs])
    if settings.tracing_enabled:
        # X-Ray's statement is in the role's DefaultPolicy (CDK adds it for active tracing).
        acknowledge(role, "AwsSolutions-IAM5", XRAY_WILDCARD_REASON, findings=("Resource::*",))
    acknowledge(
        function_policy(scope, spec.function),
        "AwsSolutions-IAM5",
        LOG_STREAM_WILDCARD_REASON,
        findings=(arn_finding(log_group, ":*"),),
    )
    return fn


def _acknowledge_findings(
    fn: lambda_.Function, function: Function, log_group: logs.LogGroup, key: kms.IKey | None
) -> None:
    cfn_function = fn.node.default_child
    assert isinstance(cfn_function, lambda_.CfnFunction)
    # CDK lists the role in DependsOn although Fn::GetAtt already orders it: cfn-lint W3005, harmless.
    cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
    checkov.skip(fn, checkov.FUNCTION_DLQ[function], checkov.NO_VPC, checkov.NO_RESERVED_CONCURRENCY)
    if key is None:
        checkov.skip(fn, checkov.ENVIRONMENT_AWS_MANAGED_KEY)
        checkov.skip(log_group, checkov.LOG_GROUP_SERVICE_KEY)


def add_statements(
    scope: Construct, fn: lambda_.Function, function: Function, statements: list[iam.PolicyStatement]
) -> None:
    """Add statements to the function's explicit inline policy (created on first use)."""
    policy = scope.node.try_find_child(_policy_id(function))
    if policy is None:
        assert fn.role is not None
        policy = iam.Policy(
            scope,
            _policy_id(function),
            roles=[fn.role],
            document=iam.PolicyDocument(minimize=False),
        )
        # The function must not run before its permissions exist.
        fn.node.add_dependency(policy)
    assert isinstance(policy, iam.Policy)
    policy.add_statements(*statements)


def function_policy(scope: Construct, function: Function) -> iam.Policy:
    policy = scope.node.find_child(_policy_id(function))
    assert isinstance(policy, iam.Policy)
    return policy


def _policy_id(function: Function) -> str:
    return f"{function.capitalize()}Permissions"
