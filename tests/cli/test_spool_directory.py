"""SPOOL_DIRECTORY is checked at the fetcher's cold start, not when the first large document arrives."""

from __future__ import annotations

from pathlib import Path

import pytest

from invoice_archiver.config import ConfigError, load_settings

BASE = {"ARCHIVE_BUCKET": "archive", "LEDGER_TABLE": "ledger"}


@pytest.mark.parametrize(
    ("make_path", "problem"),
    [
        (lambda tmp: tmp / "missing", "is not an existing directory"),
        (lambda tmp: tmp / "a-file", "is not an existing directory"),
    ],
    ids=["missing", "a file"],
)
def test_an_unusable_spool_directory_fails_the_fetcher_at_cold_start(
    tmp_path: Path, make_path: object, problem: str
) -> None:
    # Given SPOOL_DIRECTORY naming something that cannot hold a spool file
    (tmp_path / "a-file").write_text("x")
    path = make_path(tmp_path)  # type: ignore[operator]

    # When the fetcher's configuration is loaded
    with pytest.raises(ConfigError) as error:
        load_settings({**BASE, "SPOOL_DIRECTORY": str(path)}, function="fetcher")

    # Then the message names the variable and the path
    assert str(error.value) == f"invalid configuration: SPOOL_DIRECTORY: {path} {problem}"


def test_a_writable_spool_directory_is_accepted(tmp_path: Path) -> None:
    settings = load_settings({**BASE, "SPOOL_DIRECTORY": str(tmp_path)}, function="fetcher")
    assert settings.spool_directory == str(tmp_path)
