"""The stack's own AWS SDK layer: boto3 and botocore pinned from layers/sdk/requirements.lock.

Lambda's Python runtime bundles a boto3 that lags behind the Invoicing API (botocore silently drops
response members its model does not know), so the functions ship the SDK the tests run. Lambda puts
layers on sys.path before the runtime's own packages, so this copy is the one imported.

Built without Docker by CDK local bundling: `pip install --target` with Lambda's platform and Python
tags, from hashes, no dependencies resolved, no bytecode written. The asset hash is computed from the
lock file and the pip options, so the same lock always yields the same asset; a finished build is
kept in .cache/lambda-sdk/<hash> with the SHA-256 of its content, and the next synth copies it from
there only if its content still has that digest (otherwise it is built again).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parents[3]
SDK_LOCK_DIR = REPO_ROOT / "layers" / "sdk"
SDK_LOCK_FILE = "requirements.lock"
CACHE_DIR = REPO_ROOT / ".cache" / "lambda-sdk"
# Bump when the build steps change, so the asset hash changes with them.
BUILDER_VERSION = "1"
# Beside python/ in a cached build: the content digest it had when it was built.
CONTENT_FILE = "content.sha256"


class SdkLayerBuildError(RuntimeError):
    """pip could not build the SDK layer; the message says why."""


# Build failures of this process, for app.py to say in one line: raised inside CDK's bundling callback,
# the error reaches the app wrapped in a jsii traceback of the JavaScript side.
FAILURES: list[SdkLayerBuildError] = []
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def pip_arguments(lock: Path, target: Path, *, python_version: str, platform: str) -> list[str]:
    """The pip command that installs exactly the locked wheels for Lambda's platform into `target`."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        "--no-compile",
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--target",
        str(target),
        "-r",
        str(lock),
    ]


def asset_hash(lock: Path, *, python_version: str, platform: str) -> str:
    recipe = {"builder": BUILDER_VERSION, "python": python_version, "platform": platform}
    digest = hashlib.sha256(lock.read_bytes())
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    return digest.hexdigest()


def build(lock: Path, *, python_version: str, platform: str, cache_dir: Path = CACHE_DIR) -> Path:
    """The layer's content (a folder holding python/), from the cache or freshly built into it."""
    built = cache_dir / asset_hash(lock, python_version=python_version, platform=platform)
    if (built / "python").is_dir():
        if _content_intact(built):
            return built
        # A cached build whose files changed since it was made (edited, truncated, half-deleted) is
        # never shipped: it is built again from the hashed wheels.
        shutil.rmtree(built, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="building-", dir=cache_dir))
    command = pip_arguments(lock, staging / "python", python_version=python_version, platform=platform)
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        failure = SdkLayerBuildError(
            f"could not build the SDK layer from {lock}: {_ANSI.sub('', detail[0]).strip()} (the first "
            f"synth downloads the locked boto3 and botocore wheels from PyPI into {cache_dir}; run it once "
            "with network access, or point pip at a mirror with PIP_INDEX_URL)"
        )
        FAILURES.append(failure)
        raise failure
    # Console scripts (jp.py) have no use in a layer.
    shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
    (staging / CONTENT_FILE).write_text(content_digest(staging / "python") + "\n")
    try:
        os.replace(staging, built)  # atomic: parallel synths never see half a build
    except OSError:  # another synth finished the same build first
        shutil.rmtree(staging, ignore_errors=True)
    return built


def content_digest(folder: Path) -> str:
    """SHA-256 over every file under `folder`: its relative path, its size and its bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
        data = path.read_bytes()
        digest.update(f"{path.relative_to(folder).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _content_intact(built: Path) -> bool:
    recorded = built / CONTENT_FILE
    return recorded.is_file() and recorded.read_text().strip() == content_digest(built / "python")


@jsii.implements(ILocalBundling)
class _LocalPipBundling:
    def __init__(self, lock: Path, python_version: str, platform: str) -> None:
        self._lock, self._python_version, self._platform = lock, python_version, platform

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        built = build(self._lock, python_version=self._python_version, platform=self._platform)
        shutil.copytree(built / "python", Path(output_dir) / "python", dirs_exist_ok=True)
        return True


def sdk_platform(architecture: lambda_.Architecture) -> str:
    """pip's platform tag for the functions' architecture. By name: jsii gives each access to
    `Architecture.ARM_64` a new proxy, so comparing with `==` is never true."""
    return "manylinux2014_aarch64" if architecture.name == "arm64" else "manylinux2014_x86_64"


class SdkLayer(Construct):
    """A LayerVersion holding python/boto3, python/botocore and their pure-Python dependencies."""

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
        platform = sdk_platform(architecture)
        lock = SDK_LOCK_DIR / SDK_LOCK_FILE
        code = lambda_.Code.from_asset(
            str(SDK_LOCK_DIR),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=asset_hash(lock, python_version=python_version, platform=platform),
            bundling=BundlingOptions(
                # Never used: local bundling always succeeds or raises, so Docker is never started.
                image=DockerImage.from_registry("local-bundling-only"),
                local=_LocalPipBundling(lock, python_version, platform),
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            description="invoice-archiver: boto3/botocore pinned from layers/sdk/requirements.lock",
        )
