"""Write layers/columnar/requirements.lock: requirements-dev.lock's pyarrow, pinned by the hashes of the
wheels the layer is built from (Lambda's cp314 aarch64) and tested with here (cp311 x86_64).

`make lock-columnar` runs it after requirements-dev.lock changes (a unit test fails until the two agree).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "layers" / "columnar" / "requirements.lock"
PLATFORMS = (("manylinux_2_28_aarch64", "3.14"), ("manylinux_2_28_x86_64", "3.11"))


def main() -> None:
    dev = (ROOT / "requirements-dev.lock").read_text()
    version = re.search(r"^pyarrow==(\S+)$", dev, re.M)
    assert version, "requirements-dev.lock has no pyarrow pin"
    header = [line for line in LOCK.read_text().splitlines() if line.startswith("#")]
    hashes = []
    for platform, python in PLATFORMS:
        with tempfile.TemporaryDirectory() as wheels:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
            command += ["--platform", platform, "--implementation", "cp", "--python-version", python]
            subprocess.run([*command, "--dest", wheels, f"pyarrow=={version[1]}"], check=True)  # noqa: S603
            [wheel] = list(Path(wheels).glob("pyarrow-*.whl"))
            hashes.append(hashlib.sha256(wheel.read_bytes()).hexdigest())
    pin = f"pyarrow=={version[1]} " + " ".join(f"--hash=sha256:{digest}" for digest in hashes)
    LOCK.write_text("\n".join([*header, pin]) + "\n")
    print(f"wrote {LOCK.relative_to(ROOT)}: pyarrow=={version[1]} ({len(hashes)} wheels)")


if __name__ == "__main__":
    main()
