"""The README is the front page and docs/ the reference: every setting, metric and page is named."""

from __future__ import annotations

import re
from pathlib import Path

from invoice_archiver.constants import Metric
from invoice_archiver.env_vars import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"


def test_the_configuration_reference_lists_every_environment_variable() -> None:
    # Given the variables the functions read, and the configuration table
    table = (DOCS / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))

    # Then they are the same set: none missing, none stale
    assert documented == {var.name for var in ENV_VARS}


def test_the_readme_is_a_front_page() -> None:
    assert "make demo" in README
    assert "make test" in README
    assert "```mermaid" in README
    assert len(README.splitlines()) <= 250


def test_every_docs_page_is_linked_from_the_readme_and_every_link_resolves() -> None:
    pages = {p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.md")}
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", README))
    assert pages - linked == set()
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for target in re.findall(
            r"\]\(([^)#:]+\.(?:md|json|sql))(?:#[^)]*)?\)", page.read_text(encoding="utf-8")
        ):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}"


def test_the_docs_name_every_metric_the_dashboard_and_alarms_use() -> None:
    # Given the metric names the functions emit
    names = [value for key, value in vars(Metric).items() if key.isupper()]

    # Then the operations page or the deploy guide explains each of them
    text = (DOCS / "operations.md").read_text(encoding="utf-8") + (DOCS / "deploy.md").read_text(
        encoding="utf-8"
    )
    assert [name for name in names if name not in text] == []


def test_every_decision_is_dated_and_in_the_index() -> None:
    text = (DOCS / "decisions.md").read_text(encoding="utf-8")
    index, _, body = text.partition("\n## Pipeline")
    entries = re.findall(r"^### (.+)\n\n\*(\d{4}-\d{2}-\d{2})\.\*", body, flags=re.MULTILINE)
    assert len(entries) == len(re.findall(r"^### ", body, flags=re.MULTILINE))
    listed = re.findall(r"^- \[(.+)\]\(#[^)]+\) \((\d{4}-\d{2}-\d{2})\)$", index, flags=re.MULTILINE)
    assert sorted(listed) == sorted(entries)
