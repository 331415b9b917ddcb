"""Finding an export's files (Data Exports' layout), reading S3 objects by ranges, and reading gzip CSV
in a process that then exits cleanly."""

from __future__ import annotations

import io
import random
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from invoice_archiver.dal import cost_reader
from invoice_archiver.dal.cost_export import ExportNotFound, RangeReader, find, parse_location
from invoice_archiver.models.cost import ExportFormat
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.sandbox import cost_files
from invoice_archiver.sandbox.dataset import generate

PERIOD = BillingPeriod(2026, 2)
DATASET = generate(seed=2, periods=((2026, 1), (2026, 2)), invoices_per_account_period=4)


class ObjectStore:
    """Just enough of an S3 client to serve one object by ranges, counting the bytes sent."""

    def __init__(self, data: bytes) -> None:
        self.data, self.sent, self.calls = data, 0, 0

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        start, end = (int(x) for x in kwargs["Range"].removeprefix("bytes=").split("-"))
        body = self.data[start : end + 1]
        self.sent += len(body)
        self.calls += 1
        return {"Body": io.BytesIO(body)}


@pytest.mark.parametrize(
    ("text", "bucket", "prefix"),
    [
        ("s3://exports", "exports", ""),
        ("s3://exports/cur/", "exports", "cur"),
        ("s3://a.b-c/x/y", "a.b-c", "x/y"),
    ],
)
def test_s3_locations(text: str, bucket: str, prefix: str) -> None:
    location = parse_location(text)
    assert (location.bucket, location.prefix) == (bucket, prefix)


def test_the_export_is_found_at_its_folder_or_above_it(tmp_path: Path) -> None:
    cost_files.write(DATASET, str(tmp_path / "all"), formats=[ExportFormat.CUR2])
    below = find(parse_location(str(tmp_path / "all" / "invoice-archiver-cur2")), PERIOD)
    above = find(parse_location(str(tmp_path / "all")), PERIOD)
    assert [f.name for f in below] == [f.name for f in above]
    [item] = above
    assert item.export == "invoice-archiver-cur2"
    assert "BILLING_PERIOD=2026-02" in item.name


def test_files_outside_a_data_partition_folder_are_not_export_files(tmp_path: Path) -> None:
    # Given a manifest, a file directly in data/, and a parquet file one folder too deep
    for name in (
        "exp/metadata/BILLING_PERIOD=2026-02/exp-Manifest.json",
        "exp/data/x.parquet",
        "exp/data/BILLING_PERIOD=2026-02/deeper/x.parquet",
        "exp/data/BILLING_PERIOD=2026-02/x.txt",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")  # fmt: skip
    with pytest.raises(ExportNotFound, match="no export for 2026-02"):
        find(parse_location(str(tmp_path)), PERIOD)


def test_parquet_from_s3_reads_only_the_footer_and_the_needed_columns(tmp_path: Path) -> None:
    # Given a CUR file (many lines) whose other columns are large, as CUR's hundred columns are
    [path] = cost_files.write(DATASET, str(tmp_path), formats=[ExportFormat.CUR2], periods=[(2026, 2)]).files
    table = pa.concat_tables([pq.read_table(path)] * 200)
    rng = random.Random(1)
    for n in range(4):
        noise = ["".join(rng.choices(string.ascii_letters, k=200)) for _ in range(table.num_rows)]
        table = table.append_column(f"resource_tags_{n}", pa.array(noise))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none", row_group_size=4096)
    store = ObjectStore(buffer.getvalue())
    # When it is read through the ranged reader
    reader = RangeReader(store, "bucket", "key", len(store.data))  # type: ignore[arg-type]
    parquet = pq.ParquetFile(reader)
    rows = sum(
        b.num_rows for b in parquet.iter_batches(columns=["bill_invoice_id", "line_item_unblended_cost"])
    )
    # Then every row is read, from a fraction of the file's bytes
    assert rows == table.num_rows
    assert store.sent < len(store.data) / 10
    assert store.calls >= 2


def test_reading_exports_leaves_a_process_that_exits_cleanly(tmp_path: Path) -> None:
    # Given a process that writes Parquet and gzip CSV exports and reads both (an unclosed streaming CSV
    # reader made such a process abort at exit, with exit code 134, about one run in three)
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from invoice_archiver.logic import reconcile_job\n"
        "from invoice_archiver.models.period import BillingPeriod\n"
        "from invoice_archiver.sandbox import cost_files\n"
        "from invoice_archiver.sandbox.dataset import generate\n"
        "data = generate(seed=3, periods=((2026, 1),), invoices_per_account_period=3)\n"
        "for compression in ('parquet', 'csv.gz'):\n"
        "    folder = f'{sys.argv[1]}/{compression}'\n"
        "    cost_files.write(data, folder, compression=compression)\n"
        "    export = f'{folder}/invoice-archiver-cur2'\n"
        "    request = reconcile_job.Request(BillingPeriod(2026, 1), export, datetime.now(UTC))\n"
        "    print(reconcile_job.read_cost_data(request, None).lines)\n"
    )
    # When it runs in eight fresh interpreters
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / str(n))],
            capture_output=True, text=True, timeout=120, check=False,
        )
        for n in range(8)
    ]  # fmt: skip
    # Then each read both files and exited 0
    assert [run.returncode for run in runs] == [0] * 8, [run.stderr[-300:] for run in runs]
    assert {run.stdout for run in runs} == {runs[0].stdout}
    assert len(set(runs[0].stdout.split())) == 1


def test_a_row_group_too_large_to_read_at_once_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a CUR export, and a ceiling below what its row group's needed columns hold uncompressed
    cost_files.write(DATASET, str(tmp_path), formats=[ExportFormat.CUR2], periods=[(2026, 2)])
    files = find(parse_location(str(tmp_path)), PERIOD)
    monkeypatch.setattr(cost_reader, "MAX_ROW_GROUP_BYTES", 1000)
    # When it is read, Then it is refused before any batch, naming the file and the row group
    with pytest.raises(cost_reader.ExportUnreadable, match=r"row group 0 holds .* MiB of the columns read"):
        cost_reader.read(files, PERIOD, ExportFormat.CUR2, str(tmp_path))
    # And under the real ceiling it reads
    monkeypatch.undo()
    assert cost_reader.read(files, PERIOD, ExportFormat.CUR2, str(tmp_path)).lines > 0
