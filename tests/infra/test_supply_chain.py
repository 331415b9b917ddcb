"""What the build installs is pinned by hash: the Python locks, pip itself, and the Node fallback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from infra_synth import REPO_ROOT

LOCKS = ["requirements-pip.lock", "requirements-dev.lock", "requirements-checkov.lock"]


def pins(lock: str) -> dict[str, list[str]]:
    """Each `name==version` of a lock with the hashes that follow it."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in (REPO_ROOT / lock).read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*==\S+)", line):
            current = match.group(1)
            found[current] = []
        elif match := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line):
            found[current].append(match.group(1))
    return found


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_of_every_lock_carries_a_hash(lock: str) -> None:
    found = pins(lock)
    assert found, f"{lock} pins nothing: this check would prove nothing"
    assert [pin for pin, hashes in found.items() if not hashes] == []


def test_pip_is_pinned_and_every_venv_installs_with_required_hashes() -> None:
    assert any(pin.startswith("pip==") for pin in pins("requirements-pip.lock"))
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "PIP_INSTALL = python -m pip install --quiet --require-hashes" in makefile
    # Every install from a lock goes through it
    from_locks = re.findall(r"^\t.*-r requirements-[a-z]+\.lock.*$", makefile, flags=re.MULTILINE)
    assert from_locks, "the Makefile installs nothing from a lock"
    assert [line for line in from_locks if "$(PIP_INSTALL)" not in line] == []
    for venv in ("$(BIN)", "$(CHECKOV_VENV)/bin"):
        assert f"{venv}/$(PIP_INSTALL) -r requirements-pip.lock" in makefile


def _old_node(bin_dir: Path, real: str) -> None:
    """A `node` that says it is Node 20 when asked, so the script takes its pinned fallback (npm, itself
    a node script, still runs on the real one)."""
    fake = bin_dir / "node"
    fake.write_text(
        f'#!/bin/sh\ncase "$*" in *process.versions.node*) echo 20; exit 0;; esac\nexec {real} "$@"\n'
    )
    fake.chmod(0o755)


def test_the_node_fallback_refuses_a_tarball_without_the_pinned_integrity(tmp_path: Path) -> None:
    # Given a copy of the script whose pinned integrity no longer matches what the registry serves
    npm, real_node = shutil.which("npm"), shutil.which("node")
    if npm is None or real_node is None:
        pytest.skip("no npm on this machine: the fallback cannot download anything here")
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    script = (REPO_ROOT / "scripts" / "ensure-node.sh").read_text()
    tampered = re.sub(r'INTEGRITY_(X64|ARM64)="sha512-[^"]+"', r'INTEGRITY_\1="sha512-AAAA"', script)
    assert tampered != script
    (root / "scripts" / "ensure-node.sh").write_text(tampered)
    (root / "scripts" / "ensure-node.sh").chmod(0o755)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    _old_node(fake_bin, real_node)
    npm_dir = str(Path(npm).parent)

    # When it looks for a Node (the machine's says it is 20)
    result = subprocess.run(
        [str(root / "scripts" / "ensure-node.sh")],
        env={**os.environ, "PATH": f"{fake_bin}:{npm_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )

    # Then it refuses, in one line, and leaves nothing of the download to run
    assert result.returncode != 0
    assert "does not have the pinned integrity" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (root / ".tools" / "node" / "node_modules").exists()
