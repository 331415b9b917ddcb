"""What `invoice-archiver sandbox` prints before it is ready, read the one way every test reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True)
class Banner:
    lines: list[str]  # every line before "# sandbox ready", without its newline
    exports: dict[str, str]  # the `export NAME=value` lines

    def comments(self) -> dict[str, str]:
        """The `# name: value` lines (dataset, faults, identity...)."""
        found = {}
        for line in self.lines:
            if line.startswith("# "):
                name, _, value = line.removeprefix("# ").strip().partition(": ")
                found[name] = value
        return found


def read_banner(stdout: IO[str] | None) -> Banner:
    """Read the sandbox's stdout up to "# sandbox ready"; an early exit fails the test."""
    assert stdout is not None
    lines: list[str] = []
    exports: dict[str, str] = {}
    while not (line := stdout.readline()).startswith("# sandbox ready"):
        assert line, "the sandbox exited before it was ready"
        lines.append(line.rstrip("\n"))
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = value
    return Banner(lines, exports)
