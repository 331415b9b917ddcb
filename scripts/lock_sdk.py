"""Write layers/sdk/requirements.lock: the SDK versions of requirements-dev.lock, each pinned by hash.

`make lock-sdk` runs it after requirements-dev.lock changes (a unit test fails until the two agree).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("boto3", "botocore", "jmespath", "python-dateutil", "s3transfer", "six", "urllib3")
LOCK = ROOT / "layers" / "sdk" / "requirements.lock"


def main() -> None:
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements-dev.lock").read_text(), re.M))
    pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    header = [line for line in LOCK.read_text().splitlines() if line.startswith("#")]
    lines = []
    with tempfile.TemporaryDirectory() as wheels:
        for name in PACKAGES:
            download = ["download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", wheels]
            subprocess.run([sys.executable, "-m", "pip", *download, f"{name}=={pins[name]}"], check=True)  # noqa: S603
        for name in PACKAGES:
            stem = name.replace("-", "_")
            [wheel] = [w for w in Path(wheels).glob("*.whl") if w.name.lower().startswith(f"{stem}-")]
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            lines.append(f"{name}=={pins[name]} --hash=sha256:{digest}")
    LOCK.write_text("\n".join([*header, *lines]) + "\n")
    print(f"wrote {LOCK.relative_to(ROOT)}: {', '.join(line.split(' ')[0] for line in lines)}")


if __name__ == "__main__":
    main()
