"""The reconciler in the stack: only when cost_data_export is set; its own asset and pyarrow layer (the
lister's and fetcher's packages unchanged); least privilege; create-only results; schedule and alarms;
cdk-nag, checkov and cfn-lint clean; the pruned layer still reads Parquet and gzip CSV."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match
from cdk_nag import AwsSolutionsChecks
from infra_synth import REPO_ROOT, Synth, synth
from test_checkov import CHECKOV, REASONS

from invoice_archiver.config import env_var_names
from invoice_archiver.constants import FETCHER_HANDLER, LISTER_HANDLER, RECONCILER_HANDLER
from invoice_archiver.infra import checkov
from invoice_archiver.infra.columnar_layer import LOCK_DIR, LOCK_FILE, PRUNED, build_pruned
from invoice_archiver.infra.context import DeployConfigError

EXPORT = {"cost_data_export": "s3://acme-cost-exports/data-exports/", "cost_data_reconciliation_day": 12}
POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


@pytest.fixture(scope="module")
def reconciling() -> Synth:
    return synth(EXPORT)


def function(result: Synth, handler: str) -> tuple[str, dict[str, Any]]:
    return result.only("AWS::Lambda::Function", Handler=handler)


def test_without_an_export_there_is_no_reconciler(default: Synth) -> None:
    handlers = {f["Properties"]["Handler"] for f in default.resources("AWS::Lambda::Function").values()}
    assert handlers == {LISTER_HANDLER, FETCHER_HANDLER}
    assert not [lid for lid in default.template.to_json()["Resources"] if lid.startswith("Reconciliation")]


def test_the_lister_and_fetcher_packages_are_the_same_with_or_without_the_reconciler(
    default: Synth, reconciling: Synth
) -> None:
    # Given the stack without and with the reconciler
    for handler in (LISTER_HANDLER, FETCHER_HANDLER):
        before, after = function(default, handler)[1], function(reconciling, handler)[1]
        # Then the lister and fetcher keep the same code asset and the same two layers
        assert after["Properties"]["Code"] == before["Properties"]["Code"]
        assert len(after["Properties"]["Layers"]) == 2
    # And the reconciler has an asset of its own, and one more layer: pyarrow's
    _, reconciler = function(reconciling, RECONCILER_HANDLER)
    assert reconciler["Properties"]["Code"] != function(reconciling, FETCHER_HANDLER)[1]["Properties"]["Code"]
    layers = reconciler["Properties"]["Layers"]
    assert layers[:2] == function(reconciling, FETCHER_HANDLER)[1]["Properties"]["Layers"]
    assert layers[2] == {
        "Ref": reconciling.logical_id("ReconciliationColumnarLayer", "AWS::Lambda::LayerVersion")
    }


def test_the_assets_hold_the_reconciler_modules_only_where_they_run(reconciling: Synth) -> None:
    # Given the staged code assets (cdk.out's asset.<hash> folders)
    outdir = Path(reconciling.stack.node.root.outdir)  # type: ignore[attr-defined]

    def staged(handler: str) -> set[str]:
        key = function(reconciling, handler)[1]["Properties"]["Code"]["S3Key"]
        folder = outdir / f"asset.{key.removesuffix('.zip')}"
        return {p.relative_to(folder).as_posix() for p in folder.rglob("*.py")}

    fetcher, reconciler = staged(FETCHER_HANDLER), staged(RECONCILER_HANDLER)
    # Then the fetcher's asset has no reconciliation module; the reconciler's has them, and no CLI
    assert not {name for name in fetcher if re.search(r"reconcil|cost_|archived_summaries", name)}
    assert "invoice_archiver/handlers/reconciler.py" in reconciler
    assert "invoice_archiver/logic/cost_grouping.py" in reconciler
    assert not {
        name for name in reconciler if name.startswith(("invoice_archiver/cli", "invoice_archiver/sandbox"))
    }


def test_the_reconciler_reads_exactly_its_variables(reconciling: Synth) -> None:
    _, resource = function(reconciling, RECONCILER_HANDLER)
    variables = resource["Properties"]["Environment"]["Variables"]
    assert set(variables) == set(env_var_names("reconciler")) | POWERTOOLS_ENV
    assert variables["COST_DATA_EXPORT"] == "s3://acme-cost-exports/data-exports/"
    assert resource["Properties"]["Runtime"] == "python3.14"
    assert resource["Properties"]["Architectures"] == ["arm64"]


def test_least_privilege(reconciling: Synth) -> None:
    # Given the reconciler's one inline policy
    policy_id = reconciling.logical_id("ReconciliationReconcilerPermissions", "AWS::IAM::Policy")
    statements = reconciling.resources("AWS::IAM::Policy")[policy_id]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    by_sid = {s["Sid"]: s for s in statements}
    bucket = reconciling.logical_id("StorageArchiveBucket", "AWS::S3::Bucket")
    # Then it reads only the export's prefix, listing the bucket only under it
    assert by_sid["ReadCostDataExport"]["Action"] == "s3:GetObject"
    assert by_sid["ReadCostDataExport"]["Resource"] == "arn:aws:s3:::acme-cost-exports/data-exports/*"
    assert by_sid["ListCostDataExport"]["Resource"] == "arn:aws:s3:::acme-cost-exports"
    assert by_sid["ListCostDataExport"]["Condition"] == {"StringLike": {"s3:prefix": ["data-exports/*"]}}
    # And it creates objects only under reconciliation/, reads the archive prefix and queries the ledger
    assert by_sid["WriteReconciliationResults"]["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/reconciliation/*"]]
    }
    assert by_sid["ReadArchivedSummaries"]["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/invoices/*"]]
    }
    assert by_sid["ListArchive"]["Condition"] == {"StringLike": {"s3:prefix": ["invoices/*"]}}
    assert by_sid["ReadLedger"]["Action"] == "dynamodb:Query"
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject", "s3:ListBucket", "s3:PutObject",
        "s3:PutObjectTagging", "dynamodb:Query",
    }  # fmt: skip


def test_results_are_create_only_whoever_writes(reconciling: Synth) -> None:
    bucket = reconciling.logical_id("StorageArchiveBucket", "AWS::S3::Bucket")
    reconciling.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "DenyOverwritingReconciliations",
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Action": "s3:PutObject",
                                "Resource": {
                                    "Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/reconciliation/*"]]
                                },
                                "Condition": {
                                    "Null": {"s3:if-none-match": "true"},
                                    "Bool": {"s3:ObjectCreationOperation": "true"},
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_monthly_schedule_and_the_missing_invoice_alarm(reconciling: Synth) -> None:
    reconciler, _ = function(reconciling, RECONCILER_HANDLER)
    reconciling.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "cron(0 7 12 * ? *)",
            "Targets": [
                Match.object_like(
                    {"Arn": {"Fn::GetAtt": [reconciler, "Arn"]}, "DeadLetterConfig": Match.any_value()}
                )
            ],
        },
    )
    topic = reconciling.logical_id("MonitoringAlarmTopic", "AWS::SNS::Topic")
    reconciling.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "InvoicesMissingFromArchive",
            "Namespace": "InvoiceArchiver",
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": [{"Ref": topic}],
        },
    )


def test_cdk_nag_is_clean_and_every_skip_has_a_reviewed_reason(reconciling: Synth) -> None:
    report = AwsSolutionsChecks(verbose=True).validate_scope(reconciling.stack)
    assert [v.rule_name for v in report.violations] == []
    resources = reconciling.template.to_json()["Resources"]
    skipped = [
        (lid, e)
        for lid, r in resources.items()
        for e in r.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert {e["comment"] for _, e in skipped} <= REASONS
    reconciler, _ = function(reconciling, RECONCILER_HANDLER)
    assert {e["id"] for lid, e in skipped if lid == reconciler} == {
        "CKV_AWS_116",
        "CKV_AWS_117",
        "CKV_AWS_115",
        "CKV_AWS_173",
    }
    assert checkov.RECONCILER_NO_VPC.reason in {e["comment"] for _, e in skipped}


def test_cfn_lint_and_checkov_pass(reconciling: Synth, tmp_path: Path) -> None:
    template = tmp_path / "reconciling.template.json"
    template.write_text(json.dumps(reconciling.template.to_json()))
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--non-zero-exit-code", "error", str(template)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    if not CHECKOV.exists():
        pytest.skip("make test installs checkov (.venv-checkov)")
    scan = subprocess.run(
        [str(CHECKOV), "--framework", "cloudformation", "--quiet", "--compact", "--skip-download",
         "--output", "json", "--file", str(template)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    report = json.loads(scan.stdout)
    assert [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]] == []


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"cost_data_export": "https://acme/exports"}, "cost_data_export"),
        ({"cost_data_export": "s3://acme/../x"}, "cost_data_export"),
        (
            {"cost_data_export": "s3://a/b", "cost_data_reconciliation_day": 31},
            "cost_data_reconciliation_day",
        ),
        ({"cost_data_export": "s3://a/b", "reconciliation_tolerance": "-0.01"}, "reconciliation_tolerance"),
    ],
)
def test_a_bad_setting_stops_the_synth_naming_its_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(DeployConfigError, match=f"context key '{key}'"):
        synth(overrides)


def test_the_columnar_lock_pins_the_pyarrow_the_tests_run() -> None:
    dev = re.search(r"^pyarrow==([^\s\\]+)", (REPO_ROOT / "requirements-dev.lock").read_text(), re.M)
    layer = re.search(r"^pyarrow==(\S+) ", (LOCK_DIR / LOCK_FILE).read_text(), re.M)
    assert dev
    assert layer
    assert dev[1] == layer[1]


def test_the_pruned_layer_reads_parquet_and_gzip_csv(tmp_path: Path) -> None:
    # Given the layer built and pruned as `cdk synth` does, for this machine's platform and Python
    layer = build_pruned(LOCK_DIR / LOCK_FILE, python_version="3.11", platform="manylinux_2_28_x86_64",
                         target=tmp_path / "layer")  # fmt: skip
    package = layer / "python" / "pyarrow"
    assert not [p for p in package.iterdir() if any(fnmatch.fnmatch(p.name, pattern) for pattern in PRUNED)]
    assert (package / "libarrow_python.so.2600").is_file()  # the SONAME the extension modules load
    # When a fresh interpreter that finds pyarrow only there (first on sys.path) reads a sandbox export
    script = """
import sys, pyarrow
assert pyarrow.__file__.startswith(sys.argv[1]), pyarrow.__file__
from invoice_archiver.sandbox import cost_files
from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.logic import reconcile_job
from invoice_archiver.models.period import BillingPeriod
from datetime import datetime, UTC
data = generate(seed=3, periods=((2026, 1),), invoices_per_account_period=3)
for compression in ("parquet", "csv.gz"):
    folder = sys.argv[2] + "/" + compression
    cost_files.write(data, folder, compression=compression)
    export = folder + "/invoice-archiver-cur2"
    request = reconcile_job.Request(BillingPeriod(2026, 1), export, datetime.now(UTC))
    cost = reconcile_job.read_cost_data(request, None)
    print(compression, cost.lines, len(cost.invoices()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(layer / "python"), str(tmp_path)],
        env={"PYTHONPATH": f"{layer / 'python'}:{REPO_ROOT / 'src'}", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    # Then it reads both, every invoice of the period
    assert done.returncode == 0, done.stderr
    assert [line.split()[2] for line in done.stdout.split("\n") if line] == ["9", "9"]
