"""docs/cli.md's command table is the users' reference: one row per subcommand, with every option it takes."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from invoice_archiver.cli.main import build_parser

CLI_DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")


def _options() -> dict[str, set[str]]:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {
        name: {s for a in sub._actions for s in a.option_strings if s.startswith("--") and s != "--help"}
        for name, sub in commands.choices.items()
    }


def test_the_command_table_names_every_option_of_every_command() -> None:
    # Given docs/cli.md's command table (| `command` | options | what it does |)
    section = CLI_DOC[: CLI_DOC.index("## On the sandbox")]
    rows = {
        m["name"]: m["row"] for m in re.finditer(r"^\| `(?P<name>[a-z-]+)` \|(?P<row>.*)$", section, re.M)
    }

    # Then every command has a row, and its row names each of its options
    options = _options()
    assert set(rows) == set(options)
    missing = {
        name: sorted(o for o in opts if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", rows[name]))
        for name, opts in options.items()
    }
    assert {name: found for name, found in missing.items() if found} == {}
