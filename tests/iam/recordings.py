"""Recording in the tiers that drive the handlers (tests/integration, tests/shipped): one file per pytest
worker, and the check every test gets for free: each request a function sent is one the IAM mapping
(tests/iam/actions.py) knows, so a new AWS call never reaches the code without the replay knowing what
IAM actions it needs.

Files: .cache/iam-replay/<tier>/<worker>.jsonl (`gw0`, `gw1`, or `main` without xdist), one JSON record
per line with the test's node id; each worker empties its own file when its session starts, so two
workers never write to one file and a file always holds one session. They are for reading (which call
came from which test and line of code); the replay tier (tests/iam) evaluates its own recordings, so no
test depends on another's having run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.iam.actions import RULES

ROOT = Path(__file__).resolve().parents[2] / ".cache" / "iam-replay"


def worker_file(tier: str) -> Path:
    """This worker's file for `tier`, emptied (call once per session)."""
    path = ROOT / tier / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def append(path: Path, records: Iterable[Mapping[str, Any]], test: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps({**record, "test": test}, sort_keys=True, default=str) + "\n")


def unmapped(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The requests whose operation tests/iam/actions.py does not map, one line each."""
    return sorted(
        {
            f"{r['function']}: {r['service']} {r['operation']} from {r.get('origin')}"
            for r in records
            if (r["service"], r["operation"]) not in RULES
        }
    )
