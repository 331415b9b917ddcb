"""An --output file: checked before any work (a mistake costs nothing), then written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from invoice_archiver.cli.errors import CliError


def checked(text: str | None, *, force: bool) -> Path | None:
    """The file --output names, if it may be written: never through a link, never over a folder, FIFO or
    device, over an existing file only with --force, and into a writable folder."""
    if text is None:
        if force:
            raise CliError("--force replaces an --output file; there is none")
        return None
    if not text.strip():
        raise CliError("--output needs a file name (it is empty)")
    path = Path(text)
    if path.is_symlink():
        raise CliError(
            f"--output {text}: is a symbolic link; name a regular file (a link is never written through)"
        )
    if path.is_dir():
        raise CliError(f"--output {text}: is a folder; name a file")
    if path.exists() and not path.is_file():
        raise CliError(f"--output {text}: not a regular file (a FIFO, device or socket); name a regular file")
    if path.exists() and not force:
        raise CliError(f"--output {text}: exists; pass --force to replace it")
    parent = path.absolute().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise CliError(f"--output {text}: {parent} is not a writable folder")
    return path


def write_atomically(path: Path, text: str) -> None:
    """The whole file or nothing: a failed run never leaves half a file behind. The file gets the
    permissions any new file gets here (the umask), as if written directly."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with temporary.open("x", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise CliError(
            f"--output {path}: cannot write it ({exc.strerror or exc}); nothing was written"
        ) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
