"""The first `cdk synth` on a machine that cannot reach PyPI, with no SDK layer built yet: one line that
says what failed and what to do, exit 2; not jsii's traceback of the JavaScript side, nor colour codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_first_offline_synth_without_an_sdk_layer_cache_fails_in_one_clear_line(tmp_path: Path) -> None:
    # Given a fresh copy of the app (so its SDK-layer cache, .cache/lambda-sdk, is empty) and a pip that
    # cannot reach any index
    for name in ("app.py", "cdk.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "layers", tmp_path / "layers")
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
        "PYTHONPATH": str(tmp_path / "src"),
    }
    env.pop("PIP_FIND_LINKS", None)

    # When the app is synthesized, as `cdk synth` runs it
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    # Then it stops with exit 2 and one line naming the lock file, pip's reason and what to do
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "jsii" not in result.stderr
    assert "\x1b[" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: could not build the SDK layer from {tmp_path / 'layers'}")
    assert "run it once with network access, or point pip at a mirror with PIP_INDEX_URL" in errors[0]
    # ... and nothing half-built is left in the cache
    cache = tmp_path / ".cache" / "lambda-sdk"
    assert not cache.exists() or not [p for p in cache.iterdir() if (p / "python").exists()]
