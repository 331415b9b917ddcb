"""The reconciler's columnar layer: pyarrow pinned from layers/columnar/requirements.lock, pruned.

Built like the SDK layer (infra.sdk_layer.build: `pip install --target` for Lambda's platform, from
hashes, no Docker), then pruned of what the reconciler never loads: Arrow Flight, Arrow's own S3, GCS,
Azure and HDFS filesystems (the export is read through boto3), the C++ headers, Cython sources and
tests, and the unversioned copies of libarrow_python (the extension modules link the SONAME). About
156 MB unpacked becomes about 94 MB; tests/infra/test_reconciliation.py imports the pruned layer and
reads Parquet and gzip CSV with it. Only the reconciler function gets this layer.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from invoice_archiver.infra.sdk_layer import REPO_ROOT, asset_hash, build

LOCK_DIR = REPO_ROOT / "layers" / "columnar"
LOCK_FILE = "requirements.lock"
CACHE_DIR = REPO_ROOT / ".cache" / "lambda-columnar"
# pyarrow 26's wheels are manylinux_2_28 (Lambda's python3.14 runs on Amazon Linux 2023, glibc 2.34).
PLATFORMS = {"arm64": "manylinux_2_28_aarch64", "x86_64": "manylinux_2_28_x86_64"}
# Paths under python/pyarrow/ the reconciler never loads (fnmatch patterns, one path segment deep).
PRUNED = (
    "include",
    "src",
    "tests",
    "*.pyx",
    "*.pxd",
    "*.pxi",
    "*flight*",
    "libarrow_s3.so*",
    "_s3fs.*",
    "_gcsfs.*",
    "_azurefs.*",
    "_hdfs.*",
    "_pyarrow_cpp_tests.*",
    "libarrow_python.so",
    "libarrow_python.so.*.*.*",
    "libarrow_python_parquet_encryption.so",
    "libarrow_python_parquet_encryption.so.*.*.*",
)


def platform_for(architecture: str) -> str:
    return PLATFORMS[architecture]


def layer_hash(lock: Path, *, python_version: str, platform: str) -> str:
    """The layer asset's hash: the lock, the pip recipe and the pruning."""
    recipe = asset_hash(lock, python_version=python_version, platform=platform) + json.dumps(PRUNED)
    return hashlib.sha256(recipe.encode()).hexdigest()


def prune(root: Path) -> int:
    """Remove PRUNED from root/python/pyarrow; the bytes removed."""
    package = root / "python" / "pyarrow"
    removed = 0
    for path in sorted(package.iterdir()):
        if not any(fnmatch.fnmatch(path.name, pattern) for pattern in PRUNED):
            continue
        if path.is_dir():
            removed += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path)
        else:
            removed += path.stat().st_size
            path.unlink()
    return removed


def build_pruned(lock: Path, *, python_version: str, platform: str, target: Path) -> Path:
    """The pruned layer content in `target` (a folder holding python/)."""
    built = build(lock, python_version=python_version, platform=platform, cache_dir=CACHE_DIR)
    shutil.copytree(built, target, dirs_exist_ok=True)
    prune(target)
    return target


@jsii.implements(ILocalBundling)
class _LocalPrunedBundling:
    def __init__(self, lock: Path, python_version: str, platform: str) -> None:
        self._lock, self._python_version, self._platform = lock, python_version, platform

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        build_pruned(
            self._lock, python_version=self._python_version, platform=self._platform, target=Path(output_dir)
        )
        return True


class ColumnarLayer(Construct):
    """A LayerVersion holding python/pyarrow (pruned), for the reconciler function only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
        python_version: str,
    ) -> None:
        super().__init__(scope, construct_id)
        # By name: jsii gives each Architecture.ARM_64 access a new proxy, so `==` is never true.
        platform = platform_for(architecture.name)
        lock = LOCK_DIR / LOCK_FILE
        code = lambda_.Code.from_asset(
            str(LOCK_DIR),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=layer_hash(lock, python_version=python_version, platform=platform),
            bundling=BundlingOptions(
                image=DockerImage.from_registry("local-bundling-only"),  # never used: bundled locally
                local=_LocalPrunedBundling(lock, python_version, platform),
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            description="invoice-archiver reconciler: pyarrow pinned from layers/columnar/requirements.lock",
        )
