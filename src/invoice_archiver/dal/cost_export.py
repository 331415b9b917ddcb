"""Where a Data Exports export keeps one billing period: its files, in S3 or in a local folder.

    <bucket>/<prefix>/<export-name>/data/BILLING_PERIOD=YYYY-MM/<export-name>-00001.snappy.parquet
                                                                 (or .csv.gz)

The location may name the export itself or any prefix above it (a bucket with several exports): the
period's files are those directly in a `data/BILLING_PERIOD=<period>/` folder beneath it. Keys are taken
as S3 lists them and only ever read (nothing is written from their names); a key with an empty, '.' or
'..' segment is not an export file and is left out. In a local folder only regular files are read:
a symbolic link or a device is left out, and so is anything outside the folder.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from invoice_archiver.models.period import BillingPeriod

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SUFFIXES = (".parquet", ".csv.gz")
_PARTITION = re.compile(r"^BILLING_PERIOD=(\d{4}-\d{2})$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")


class ExportNotFound(ValueError):
    """No export for the period at the location (or the location itself is unusable); says which."""


@dataclass(frozen=True)
class ExportFile:
    name: str  # s3://bucket/key or the local path, as shown to a person
    export: str  # the export's folder (the part before data/BILLING_PERIOD=...)
    size: int
    bucket: str = ""  # empty for a local file
    key: str = ""

    @property
    def compressed_csv(self) -> bool:
        return self.name.endswith(".csv.gz")


@dataclass(frozen=True)
class Location:
    text: str
    bucket: str = ""  # empty: a local folder
    prefix: str = ""

    @property
    def local(self) -> bool:
        return not self.bucket


def parse_location(text: str) -> Location:
    """s3://bucket/prefix/ or a local folder; anything else is ExportNotFound."""
    value = text.strip()
    if not value:
        raise ExportNotFound("--cost-data is empty: name s3://bucket/prefix/ or a folder")
    if value.startswith("s3://"):
        match = _S3_URI.match(value)
        if match is None:
            raise ExportNotFound(f"{value} is not an S3 location of the form s3://bucket/prefix/")
        prefix = (match["prefix"] or "").strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise ExportNotFound(f"{value}: the prefix has an empty, '.' or '..' segment")
        return Location(value, match["bucket"], prefix)
    if "://" in value:
        raise ExportNotFound(f"{value}: only s3:// locations and local folders are read")
    folder = Path(value)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise ExportNotFound(f"--cost-data {value} {what}: name the folder that holds the export")
    return Location(value)


def find(location: Location, period: BillingPeriod, s3: S3Client | None = None) -> list[ExportFile]:
    """The period's files under the location, sorted; ExportNotFound names the periods there are."""
    candidates = _local(location) if location.local else _s3(location, s3)
    files, periods = [], set()
    for name, relative, size, key in candidates:
        parts = relative.split("/")
        if len(parts) < 3 or any(part in ("", ".", "..") for part in parts):
            continue
        *export, data, partition, filename = parts
        found = _PARTITION.match(partition)
        if data != "data" or found is None or not filename.endswith(SUFFIXES):
            continue
        periods.add(found.group(1))
        if found.group(1) == str(period):
            folder = "/".join(part for part in export if part)
            files.append(ExportFile(name, folder, size, location.bucket, key))
    if not files:
        there = f" (periods there: {', '.join(sorted(periods))})" if periods else ""
        raise ExportNotFound(
            f"no export for {period} under {location.text}: no data/BILLING_PERIOD={period}/ folder "
            f"with .parquet or .csv.gz files{there}"
        )
    return sorted(files, key=lambda f: f.name)


def _local(location: Location) -> Iterator[tuple[str, str, int, str]]:
    root = Path(location.text).resolve()
    for folder, _dirs, names in os.walk(root):  # never follows a symbolic link to a folder
        for filename in names:
            path = Path(folder) / filename
            if path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(root).as_posix()
            yield str(path), relative, path.stat().st_size, ""


def _s3(location: Location, s3: S3Client | None) -> Iterator[tuple[str, str, int, str]]:
    assert s3 is not None
    prefix = f"{location.prefix}/" if location.prefix else ""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            relative = key[len(prefix) :]
            yield f"s3://{location.bucket}/{key}", relative, int(entry.get("Size", 0)), key


def open_seekable(item: ExportFile, s3: S3Client | None = None) -> IO[bytes]:
    """A local file, or a seekable reader of the S3 object that fetches only the ranges asked for
    (Parquet: the footer, then the chunks of the columns read)."""
    if not item.bucket:
        return open(item.name, "rb")
    assert s3 is not None
    return cast("IO[bytes]", RangeReader(s3, item.bucket, item.key, item.size))


def open_stream(item: ExportFile, s3: S3Client | None = None) -> IO[bytes]:
    """A local file, or the S3 object's body read front to back (gzip CSV is read in one pass)."""
    if not item.bucket:
        return open(item.name, "rb")
    assert s3 is not None
    body: IO[bytes] = s3.get_object(Bucket=item.bucket, Key=item.key)["Body"]  # type: ignore[assignment]
    return body


class RangeReader(io.RawIOBase):
    """A read-only, seekable view of one S3 object: every read is one ranged GetObject.

    Parquet readers ask for the footer, then for the byte ranges of the columns they need: with this, an
    export's other columns (most of CUR's hundred) never cross the network, and nothing is spooled.
    """

    def __init__(self, s3: S3Client, bucket: str, key: str, size: int) -> None:
        super().__init__()
        self._s3, self._bucket, self._key, self._size = s3, bucket, key, size
        self._position = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._position >= self._size or len(buffer) == 0:
            return 0
        end = min(self._size, self._position + len(buffer)) - 1
        body = self._s3.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end}")
        data = body["Body"].read()
        self.requests += 1
        if not data:
            return 0
        count = min(len(data), len(buffer))
        memoryview(buffer)[:count] = data[:count]
        self._position += count
        return count
