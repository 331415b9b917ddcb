"""The README is the users' reference: it must name every setting and every metric the code has."""

from __future__ import annotations

import re
from pathlib import Path

from invoice_archiver.config import ENV_VARS
from invoice_archiver.constants import Metric

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_configuration_reference_lists_every_environment_variable() -> None:
    # Given the variables the functions read, and the README's configuration table
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))

    # Then they are the same set: none missing, none stale
    assert documented == {var.name for var in ENV_VARS}


def test_the_readme_has_both_commands_and_a_mermaid_diagram() -> None:
    assert "make demo" in README
    assert "make test" in README
    assert "```mermaid" in README


def test_the_deploy_guide_names_every_metric_the_dashboard_and_alarms_use() -> None:
    # Given the metric names the functions emit
    names = [value for key, value in vars(Metric).items() if key.isupper()]

    # Then the README or the deploy guide explains each of them
    text = README + (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert [name for name in names if name not in text] == []
