"""The loaded-as-shipped tier: the real `cdk synth`, an old Lambda runtime, and the functions from cdk.out.

Nothing here imports the code under test: the CDK CLI synthesizes the app into a fresh cloud assembly,
and each function runs in a separate interpreter whose packages are only those of the runtime floor
(tests/shipped/runtime-floor.lock), loaded by tests/shipped/lambda_bootstrap.py as Lambda loads it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import venv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from assembly import Assembly, ShippedFunction, read

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
FLOOR_LOCK = HERE / "runtime-floor.lock"
BOOTSTRAP = HERE / "lambda_bootstrap.py"
RECORDER = HERE.parent / "iam" / "recorder.py"  # every AWS request, for the IAM replay (tests/iam)
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # tests.iam, when this tier runs alone

Invoke = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cloud assembly from the real CDK CLI (node_modules), as `cdk synth` and `cdk deploy` make it."""
    out = tmp_path_factory.mktemp("cdk") / "cdk.out"
    cdk = REPO_ROOT / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "the CDK CLI is missing: run `make test` (it runs `npm ci` first)"
    env = {**os.environ, "CDK_DISABLE_VERSION_CHECK": "true", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    result = subprocess.run(
        [str(cdk), "synth", "--quiet", "--no-notices", "--output", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"cdk synth failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.fixture(scope="session")
def shipped(cdk_out: Path) -> Assembly:
    return read(cdk_out)


@pytest.fixture(scope="session")
def runtime_floor() -> Path:
    """The interpreter of an old Lambda runtime plus the Powertools layer's packages, built once."""
    digest = hashlib.sha256(FLOOR_LOCK.read_bytes() + sys.version.encode()).hexdigest()[:16]
    home = REPO_ROOT / ".cache" / "lambda-runtime" / digest
    python = home / "bin" / "python"
    home.parent.mkdir(parents=True, exist_ok=True)
    # Both xdist workers reach this on a fresh machine: one builds while the other waits (two pip
    # installs into one venv at once break each other).
    with open(home.parent / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".complete").exists():
            venv.create(home, with_pip=True, clear=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-r", str(FLOOR_LOCK)],
                check=True,
            )
            (home / ".complete").touch()
    return python


@pytest.fixture
def invoke(runtime_floor: Path, tmp_path: Path) -> Invoke:
    """invoke(function, environment, events, layers=None) -> {"loaded": ..., "results": [...]} or
    {"init_error": ...}; `layers` defaults to the function's own layers from cdk.out."""

    def run(
        function: ShippedFunction,
        environment: dict[str, str],
        events: Sequence[dict[str, Any]],
        layers: Sequence[Path] | None = None,
    ) -> dict[str, Any]:
        spec = {
            "task": str(function.code),
            "layers": [str(p) for p in (function.own_layers if layers is None else layers)],
            "handler": function.handler,
            "function_name": f"shipped-{function.name}",
            "events": list(events),
            "recorder": str(RECORDER),
        }
        spec_file, result_file = tmp_path / f"{function.name}-spec.json", tmp_path / f"{function.name}.json"
        spec_file.write_text(json.dumps(spec))
        process = subprocess.run(
            [str(runtime_floor), str(BOOTSTRAP), str(spec_file), str(result_file)],
            cwd=tmp_path,
            env=_lambda_environment(function, environment),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert process.returncode == 0, f"{function.name} crashed:\n{process.stderr[-4000:]}"
        outcome: dict[str, Any] = json.loads(result_file.read_text())
        outcome["log"] = process.stdout + process.stderr
        return outcome

    return run


def _lambda_environment(function: ShippedFunction, environment: dict[str, str]) -> dict[str, str]:
    """What Lambda sets, the sandbox's endpoints and credentials, and the function's own variables."""
    passed = {k: v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL")}
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": f"shipped-{function.name}",
        "LAMBDA_TASK_ROOT": str(function.code),
        # Local deviations, each because nothing here plays the part: no X-Ray daemon, and the
        # sandbox's pre-signed URLs are http://127.0.0.1 rather than https://*.amazonaws.com.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
        **passed,
        **environment,
    }
