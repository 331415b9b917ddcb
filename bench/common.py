"""Helpers shared by the bench scripts: process memory/CPU readings, child processes, local environment.

Every figure is measured in a fresh child process (``python bench/<script>.py --child ...``) that writes
its result as JSON to a file; the parent only orchestrates, starts the out-of-process servers and prints.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PYTHON = sys.executable
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024

# What `cli.run_local` sets for a local run, plus a clean credential environment.
BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_CONFIG_FILE": "/dev/null",
}


# --- readings from /proc -------------------------------------------------------------------------


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """The memory lines of /proc/<pid>/status in bytes (VmRSS, VmHWM, ...); empty once the process is gone."""
    values: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return values
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if name.startswith(("Vm", "Rss")) and len(parts) == 2 and parts[1] == "kB":
            values[name] = int(parts[0]) * 1024
    return values


def rss_now() -> int:
    """Current resident set size of this process in bytes (from /proc/self/statm, cheap)."""
    fields = Path("/proc/self/statm").read_text().split()
    return int(fields[1]) * PAGE_SIZE


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process and its reaped children, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rpartition(")")[2].split()
    # after the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLOCK_TICKS


# --- environment and child processes -------------------------------------------------------------


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any AWS endpoint or profile setting, plus fake credentials and `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("INVOICE_QUEUE_URL", "DEAD_LETTER_QUEUE_URL")
    }
    env.update(BASE_ENV)
    # powertools warns on stderr when the lister flushes no metrics; it only clutters the output
    env.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def run_child(script: str, args: list[str], env: Mapping[str, str], result: Path, timeout: float) -> Any:
    """Run ``python bench/<script> --child <args>`` and return the JSON it wrote to `result`."""
    command = [PYTHON, str(BENCH_DIR / script), "--child", "--result", str(result), *args]
    done = subprocess.run(command, env=dict(env), cwd=ROOT, timeout=timeout, check=False)  # noqa: S603
    if done.returncode != 0 or not result.exists():
        raise RuntimeError(f"{script} {' '.join(args)} failed with exit code {done.returncode}")
    return json.loads(result.read_text())


def write_result(path: str, payload: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(payload, indent=1, sort_keys=True))


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate a server we started (SIGTERM, then SIGKILL after 10 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def machine() -> dict[str, Any]:
    import platform

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count() or 0,
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
    }


def mib(value: float) -> float:
    return value / MIB
