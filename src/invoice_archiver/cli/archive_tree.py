"""The archive as run-local shows it: a tree of complete invoices, and a copy into a local folder.

An invoice is complete when its folder holds summary.json (written last); folders without it are
counted apart and never copied, as a downstream consumer would not see them either. Revisions written by
later re-checks (`<invoice>/revisions/<time>-summary.json`) belong to their invoice's folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from invoice_archiver.cli.errors import CliError
from invoice_archiver.cli.wording import count
from invoice_archiver.dal import clients
from invoice_archiver.dal.archived_summaries import ArchiveListing
from invoice_archiver.logic.layout import SUMMARY_FILE


def print_tree(bucket: str, prefix: str, listing: ArchiveListing, invoices_shown: int = 2) -> None:
    print(f"\nArchive tree (s3://{bucket}/{prefix}/), complete invoices only:")
    by_parent: dict[str, list[str]] = {}
    for folder in sorted(listing.complete):
        by_parent.setdefault(folder.rpartition("/")[0], []).append(folder)
    shown = [listing.complete[f] for children in by_parent.values() for f in children[:invoices_shown]]
    name_width = max((len(name) for objects in shown for name, _ in objects), default=0)
    size_width = max((len(str(size)) for objects in shown for _, size in objects), default=0)
    for parent, children in by_parent.items():
        print(f"  {parent.removeprefix(prefix + '/')}/  ({count(len(children), 'invoice')})")
        for folder in children[:invoices_shown]:
            print(f"    {folder.rpartition('/')[2]}/")
            for name, size in listing.complete[folder]:
                print(f"      {name:<{name_width}}  {size:>{size_width}} bytes")
        if len(children) > invoices_shown:
            print(f"    ... {count(len(children) - invoices_shown, 'more invoice', 'more invoices')}")
    if not listing.complete:
        print("  (no complete invoice)")
    if listing.incomplete:
        folders = count(len(listing.incomplete), "invoice folder")
        print(f"  + {folders} without {SUMMARY_FILE} (incomplete, not counted)")


def check_out_folder(text: str | None) -> Path | None:
    """--out: a folder (created if missing), never a file, never the empty string."""
    if text is None:
        return None
    if not text.strip():
        raise CliError("--out needs a folder name (it is empty)")
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {text}: is a file; name a folder (it is created if missing)")
    existing = next(p for p in (out.resolve(), *out.resolve().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise CliError(f"--out {text}: cannot create it in {existing} (not a writable folder)")
    return out


def copy_archive(bucket: str, keys: list[str], out: Path) -> int:
    """Copy archive objects under `out`, refusing any key that would land outside it.

    Everything is first copied into a staging folder beside `out`, then moved into it (renames, no new
    space needed): a copy that fails (a full disk, an endpoint gone) leaves no partial folder, and `out`
    as it was.
    """
    root = out.resolve()
    targets = []
    for key in keys:
        target = (root / key).resolve()
        if not target.is_relative_to(root) or target == root:
            raise CliError(f"refusing to write outside {root}: key {key!r}")
        targets.append((key, target.relative_to(root)))
    existing = next(p for p in (root, *root.parents) if p.exists())
    left = f"{out} is as it was" if root.exists() else "nothing was written"
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=existing))
    try:
        _copy_all(bucket, [(key, staging / relative) for key, relative in targets])
        if not root.exists():
            root.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, root)
            return len(targets)
        for _, relative in targets:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, root / relative)
    except OSError as exc:
        raise CliError(f"--out {out}: cannot copy the archive ({exc.strerror or exc}); {left}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(targets)


def _copy_all(bucket: str, targets: list[tuple[str, Path]]) -> None:
    s3 = clients.s3()

    def copy(key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with target.open("wb") as handle:
            shutil.copyfileobj(body, handle, 1024 * 1024)

    pool = ThreadPoolExecutor(max_workers=8)
    try:
        for future in [pool.submit(copy, key, target) for key, target in targets]:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
