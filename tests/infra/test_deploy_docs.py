"""docs/deploy.md and the README name exactly the context keys the settings model accepts."""

from __future__ import annotations

import re

from infra_synth import REPO_ROOT, cdk_json_context

from invoice_archiver.infra.context import unknown_keys
from invoice_archiver.infra.settings import DeploySettings

DEPLOY = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def reference_table() -> set[str]:
    """The keys of deploy.md's configuration reference (its table's first column)."""
    section = DEPLOY.split("### Configuration reference", 1)[1].split("\n### ", 1)[0]
    first_cells = re.findall(r"^\| (`[a-z_]+`(?: / `[a-z_]+`)*) \|", section, flags=re.MULTILINE)
    return {key for cell in first_cells for key in re.findall(r"`([a-z_]+)`", cell)}


def test_the_reference_table_names_every_key_of_the_model_and_no_other() -> None:
    assert reference_table() == set(DeploySettings.model_fields)


def test_every_c_key_the_docs_show_is_a_key_of_the_model() -> None:
    shown = set(re.findall(r"-c ([A-Za-z_-]+)=", DEPLOY + README)) - {"key"}  # `-c key=value`
    assert shown, "the docs show no -c example: this check would prove nothing"
    assert unknown_keys(dict.fromkeys(shown)) == []


def test_cdk_json_holds_no_key_the_model_refuses() -> None:
    assert unknown_keys(cdk_json_context()) == []
