"""One period of a Data Exports export read with pyarrow, streamed: only the columns a reconciliation
needs, one record batch at a time, summed as it is read (logic.cost_grouping).

Parquet is read through a seekable file (dal.cost_export.RangeReader for S3: the footer and the needed
column chunks only, by ranged GETs); gzip CSV in one pass, every column as text, so its amounts are read
exactly as written. Memory holds one batch of the needed columns, whatever the export's size.
"""

from __future__ import annotations

import contextlib
import csv
import io
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from typing import IO, TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from invoice_archiver.dal.cost_export import ExportFile, open_seekable, open_stream
from invoice_archiver.logic.cost_grouping import UnreadableLines, add_batch
from invoice_archiver.models.cost import CostData, ExportFormat, required_columns, source_columns
from invoice_archiver.models.period import BillingPeriod

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BATCH_ROWS = 64 * 1024
CSV_BLOCK_BYTES = 1024 * 1024  # Arrow reads a few dozen blocks ahead: the block bounds the memory
HEADER_BYTES = 64 * 1024
# A row group is read a column chunk at a time: one whose needed columns hold more than this, uncompressed,
# is refused rather than read (Data Exports' row groups are far smaller; a hostile file's need not be).
MAX_ROW_GROUP_BYTES = 1024 * 1024 * 1024
OnBatch = Callable[[str, int], None]


class ExportUnreadable(ValueError):
    """A file that is not (or not all) a readable export of the expected format; names the file."""


def detect(columns: list[str], wanted: ExportFormat | None, name: str) -> ExportFormat:
    """The file's format from its columns (CUR 2.0 or FOCUS 1.2), checked against `wanted` if given."""
    present = set(columns)
    matches = [form for form in ExportFormat if set(required_columns(form)) <= present]
    if wanted is not None and wanted in matches:
        return wanted
    if wanted is not None:
        missing = [c for c in required_columns(wanted) if c not in present]
        other = f"; it is a {matches[0].label} export" if matches else ""
        raise ExportUnreadable(f"{name}: not a {wanted.label} export (no {', '.join(missing)}){other}")
    if not matches:
        missing = [c for c in required_columns(ExportFormat.CUR2) if c not in present]
        raise ExportUnreadable(
            f"{name}: neither a CUR 2.0 nor a FOCUS 1.2 export (no {', '.join(missing)}, nor FOCUS's "
            f"{', '.join(required_columns(ExportFormat.FOCUS))})"
        )
    return matches[0]


def choose(
    files: list[ExportFile], wanted: ExportFormat | None, location: str, s3: S3Client | None
) -> tuple[ExportFormat, list[ExportFile]]:
    """The one export (folder) the period's files belong to, and its format (each folder's first file
    tells). Several exports of the wanted format under the location: ExportUnreadable naming them."""
    folders: dict[str, list[ExportFile]] = {}
    for item in files:
        folders.setdefault(item.export, []).append(item)
    found: dict[str, ExportFormat] = {}
    first_error: ExportUnreadable | None = None
    for folder, items in folders.items():
        try:
            found[folder] = detect(_columns(items[0], s3), wanted, items[0].name)
        except ExportUnreadable as exc:
            first_error = first_error or exc
    if not found:
        assert first_error is not None
        raise first_error
    if len(found) > 1:
        names = ", ".join(f"{folder or '.'}/ ({form.label})" for folder, form in sorted(found.items()))
        hint = "" if wanted else ", or pass --format"
        raise ExportUnreadable(f"several exports under {location}: {names}; name one{hint}")
    [(folder, form)] = found.items()
    return form, folders[folder]


def read(
    files: list[ExportFile],
    period: BillingPeriod,
    form: ExportFormat,
    location: str,
    *,
    s3: S3Client | None = None,
    on_batch: OnBatch | None = None,
) -> CostData:
    """Every line of `period` in the files, summed per invoice (see logic.cost_grouping)."""
    data = CostData(location, form, [item.name for item in files])
    for item in files:
        # Closed here, whatever happens: a reader left open until the interpreter's exit can abort it
        # ("terminate called without an active exception") while Arrow's threads are torn down.
        with closing(_batches(item, form, s3)) as batches:
            for batch in batches:
                try:
                    add_batch(data, batch, period)
                except UnreadableLines as exc:
                    column = source_columns(form).get(exc.column, exc.column)
                    raise ExportUnreadable(f"{item.name}: {column}: {exc.problem}") from None
                if on_batch is not None:
                    on_batch(item.name, batch.num_rows)
    return data


def _batches(
    item: ExportFile, form: ExportFormat, s3: S3Client | None
) -> Generator[pa.RecordBatch, None, None]:
    wanted = source_columns(form)
    try:
        with contextlib.ExitStack() as stack:
            if item.compressed_csv:
                present = _columns(item, s3)
                detect(present, form, item.name)
                columns = {name: source for name, source in wanted.items() if source in present}
                stream = stack.enter_context(open_stream(item, s3))
                batches = _csv_batches(stream, list(columns.values()))
            else:
                parquet = stack.enter_context(
                    closing(pq.ParquetFile(stack.enter_context(open_seekable(item, s3))))
                )
                present = parquet.schema_arrow.names
                detect(present, form, item.name)
                columns = {name: source for name, source in wanted.items() if source in present}
                _check_row_groups(parquet, list(columns.values()), item.name)
                batches = parquet.iter_batches(
                    batch_size=BATCH_ROWS, columns=list(columns.values()), use_threads=False
                )
            stack.callback(getattr(batches, "close", lambda: None))  # a generator: closed before its file
            for batch in batches:
                yield pa.RecordBatch.from_arrays(
                    [batch.column(source) for source in columns.values()], names=list(columns)
                )
    except (pa.ArrowException, OSError, EOFError, zlib.error) as exc:
        kind = "gzip CSV" if item.compressed_csv else "Parquet"
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ExportUnreadable(f"{item.name}: not a readable {kind} file ({detail})") from None


def _check_row_groups(parquet: pq.ParquetFile, columns: list[str], name: str) -> None:
    metadata = parquet.metadata
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        size = sum(
            row_group.column(index).total_uncompressed_size
            for index in range(row_group.num_columns)
            if row_group.column(index).path_in_schema.split(".")[0] in columns
        )
        if size > MAX_ROW_GROUP_BYTES:
            raise ExportUnreadable(
                f"{name}: row group {group} holds {size / 2**20:,.0f} MiB of the columns read, uncompressed "
                f"(at most {MAX_ROW_GROUP_BYTES / 2**20:,.0f} MiB is read at once)"
            )


def _csv_batches(stream: IO[bytes], columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The CSV's batches. The reader and its source are closed explicitly, even after the last batch:
    left to the garbage collector, Arrow's read-ahead on the Python stream can still be running when the
    interpreter exits, which aborts the process (exit 134) now and then."""
    source = pa.CompressedInputStream(pa.PythonFile(stream, mode="r"), "gzip")
    try:
        reader = pa_csv.open_csv(
            source,
            read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False),
            convert_options=pa_csv.ConvertOptions(
                include_columns=columns,
                column_types=dict.fromkeys(columns, pa.string()),
                strings_can_be_null=False,
            ),
        )
        try:
            yield from reader
        finally:
            reader.close()
    finally:
        source.close()


def _columns(item: ExportFile, s3: S3Client | None) -> list[str]:
    """The file's column names: the Parquet schema, or a gzip CSV's header line."""
    try:
        if not item.compressed_csv:
            with open_seekable(item, s3) as handle:
                return list(pq.read_schema(handle).names)
        with open_stream(item, s3) as handle:
            head = _gunzip_head(handle)
    except (pa.ArrowException, OSError, EOFError, zlib.error) as exc:
        kind = "gzip CSV" if item.compressed_csv else "Parquet"
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ExportUnreadable(f"{item.name}: not a readable {kind} file ({detail})") from None
    line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")
    return next(csv.reader(io.StringIO(line)), [])


def _gunzip_head(handle: IO[bytes]) -> bytes:
    """The first bytes of a gzip stream's content, up to its first line (at most HEADER_BYTES)."""
    decompressor = zlib.decompressobj(wbits=31)
    out = b""
    while b"\n" not in out and len(out) < HEADER_BYTES:
        chunk = handle.read(16 * 1024)
        if not chunk:
            break
        out += decompressor.decompress(chunk, HEADER_BYTES - len(out))
    return out
