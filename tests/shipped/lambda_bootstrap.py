"""Load one function as Lambda's Python runtime does, invoke it, and report as JSON. Stdlib only.

Run by the runtime-floor interpreter (no project code installed) as

    python lambda_bootstrap.py SPEC.json RESULT.json

SPEC: {"task": code asset dir, "layers": [layer dirs, in the function's order], "handler":
"module.function", "function_name": ..., "timeout_seconds": ..., "events": [...]}.

Like Lambda it puts the code asset first on sys.path, then each layer's python/lib/pythonX.Y/site-packages
and python/ (layers extracted into one /opt, a later layer winning a clash), then the runtime's own
packages; imports the handler module once (INIT: an exception there fails the whole environment), then
invokes the handler for each event in turn, as one warm container would.

With "recorder" (tests/iam/recorder.py) in SPEC, every AWS call the function makes is recorded through a
botocore event hook, on the botocore the function loaded, and returned under "calls" (the IAM replay).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any


class Context:
    def __init__(self, function_name: str, timeout_seconds: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "shipped-test"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def merged_opt(layers: list[str], into: Path) -> Path:
    """The layers extracted in order into one folder, as Lambda builds /opt."""
    for layer in layers:
        shutil.copytree(layer, into, dirs_exist_ok=True, symlinks=True)
    return into


def lambda_sys_path(task: str, opt: Path) -> list[str]:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    runtime = [p for p in sys.path[1:] if p]  # the interpreter's own paths, without this script's folder
    return [task, str(opt / "python" / "lib" / version / "site-packages"), str(opt / "python"), *runtime]


def run(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="opt-") as opt_dir:
        opt = merged_opt(spec["layers"], Path(opt_dir))
        sys.path[:] = lambda_sys_path(spec["task"], opt)
        recorder = _recorder(spec.get("recorder"))
        module_name, function_name = spec["handler"].rsplit(".", 1)
        try:
            handler = getattr(importlib.import_module(module_name), function_name)
        except Exception as exc:
            return {"init_error": {"type": type(exc).__name__, "message": str(exc)}}
        import botocore  # the copy the function's own import resolved to

        loaded = {
            "botocore_version": botocore.__version__,
            "botocore_path": str(Path(botocore.__file__).resolve().parent),
            "handler_path": str(Path(sys.modules[module_name].__file__ or "").resolve()),
        }
        results = []
        for event in spec["events"]:
            context = Context(spec["function_name"], spec.get("timeout_seconds", 300))
            try:
                results.append({"response": handler(event, context)})
            except Exception as exc:
                results.append({"error": {"type": type(exc).__name__, "message": str(exc)}})
                traceback.print_exc()
        calls = recorder.calls if recorder else []
        return {"loaded": loaded, "results": results, "calls": calls}


def _recorder(path: str | None) -> Any:
    """tests/iam/recorder.py's Recorder, installed on the botocore now first on sys.path (the layer's)."""
    if not path:
        return None
    module_spec = importlib.util.spec_from_file_location("shipped_recorder", path)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["shipped_recorder"] = module
    module_spec.loader.exec_module(module)
    return module.Recorder().install()  # for the life of this process


if __name__ == "__main__":
    spec_file, result_file = sys.argv[1], sys.argv[2]
    outcome = run(json.loads(Path(spec_file).read_text()))
    Path(result_file).write_text(json.dumps(outcome, default=str))
