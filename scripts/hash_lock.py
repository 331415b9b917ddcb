"""Pin a frozen requirements file by hash: every file PyPI publishes for each pinned release.

    python scripts/hash_lock.py FROZEN OUT [--header TEXT]

FROZEN holds `name==version` lines (`pip freeze` of a clean venv); OUT gets the same pins, each with
`--hash=sha256:...` for every wheel and sdist of that release on PyPI (from its JSON API,
`/pypi/<name>/json`), so that `pip install --require-hashes -r OUT` installs exactly these bytes on any
platform PyPI has a wheel for.
`make lock` and `make lock-checkov` run it; nothing else does.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)$")


def release_hashes(name: str, version: str) -> list[str]:
    url = f"https://pypi.org/pypi/{name}/json"
    with urllib.request.urlopen(url, timeout=60) as response:
        project = json.load(response)
    files = project.get("releases", {}).get(version, [])
    digests = sorted({f["digests"]["sha256"] for f in files if not f.get("yanked")})
    if not digests:
        raise SystemExit(f"error: PyPI lists no file for {name}=={version}")
    return digests


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    frozen, out = Path(argv[0]), Path(argv[1])
    header = argv[3].splitlines() if len(argv) > 3 and argv[2] == "--header" else []
    lines = [f"# {line}" if line else "#" for line in header]
    for raw in frozen.read_text().splitlines():
        match = PIN.match(raw.strip())
        if not match:
            continue
        name, version = match.groups()
        hashes = release_hashes(name, version)
        lines.append(f"{name}=={version} \\")
        lines += [f"    --hash=sha256:{digest} \\" for digest in hashes[:-1]]
        lines.append(f"    --hash=sha256:{hashes[-1]}")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}: {sum(1 for line in lines if '==' in line)} pins, each by hash")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
