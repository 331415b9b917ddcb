"""The console script's exit: a command that loaded Arrow leaves by os._exit once its output is flushed,
since Arrow's thread pools torn down in the interpreter's finalization can abort a finished process
(exit -6, "terminate called without an active exception": seen in make test, about once in 30 runs of
`reconcile` on a loaded machine). The race itself cannot be drawn on demand; this holds the way around it."""

from __future__ import annotations

import sys
import types

import pytest

from invoice_archiver.cli import main as cli_main


class Exited(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def test_with_arrow_loaded_the_process_leaves_with_the_code_after_flushing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a command that printed its result and loaded pyarrow
    def command() -> int:
        print("reconciled", end="")
        return 1

    def leave(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(cli_main, "main", command)
    monkeypatch.setitem(sys.modules, "pyarrow", types.ModuleType("pyarrow"))
    monkeypatch.setattr(cli_main.os, "_exit", leave)

    # When the console script ends
    with pytest.raises(Exited) as exited:
        cli_main.entry()

    # Then it leaves through os._exit with the command's code, its output already written
    assert exited.value.code == 1
    assert capsys.readouterr().out == "reconciled"


def test_without_arrow_the_interpreter_exits_as_usual(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_main, "main", lambda: 2)
    monkeypatch.delitem(sys.modules, "pyarrow", raising=False)
    monkeypatch.setattr(cli_main.os, "_exit", lambda code: pytest.fail("os._exit without Arrow"))

    with pytest.raises(SystemExit) as exited:
        cli_main.entry()

    assert exited.value.code == 2
