"""docs/athena/summary_table.sql against the archive: parsed, then checked both ways against real
summary.json objects the pipeline wrote on the sandbox, botocore's InvoiceSummary shape and the key layout."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore.session
from botocore.model import Shape

from invoice_archiver.logic.layout import invoice_prefix
from invoice_archiver.models.period import BillingPeriod
from tests.cli.conftest import BUCKET, Local

DDL = (Path(__file__).parents[2] / "docs" / "athena" / "summary_table.sql").read_text(encoding="utf-8")
Type = Any  # "string" | ("array", Type) | ("struct", {name: Type})


class Parser:
    """Just enough of Hive's type grammar: name type pairs, array<T>, struct<name: T, ...>."""

    def __init__(self, text: str) -> None:
        self.tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[<>:,()]", text)
        self.at = 0

    def take(self, expected: str | None = None) -> str:
        token = self.tokens[self.at]
        self.at += 1
        assert expected is None or token == expected, f"expected {expected!r}, got {token!r}"
        return token

    def type(self) -> Type:
        name = self.take().lower()
        if name == "array":
            self.take("<")
            inner = self.type()
            self.take(">")
            return ("array", inner)
        if name == "struct":
            self.take("<")
            fields = self.fields(">", ":")
            return ("struct", fields)
        return name

    def fields(self, end: str, separator: str | None) -> dict[str, Type]:
        fields: dict[str, Type] = {}
        while True:
            name = self.take()
            if separator:
                self.take(separator)
            fields[name] = self.type()
            if self.take() == end:
                return fields


def table() -> tuple[dict[str, Type], dict[str, Type], dict[str, str]]:
    """(columns, partition columns, table properties)."""
    body = DDL[DDL.index("invoice_summaries (") + len("invoice_summaries (") :]
    parser = Parser(body)
    columns = parser.fields(")", None)
    partitions_text = re.search(r"PARTITIONED BY \(([^)]*)\)", DDL)
    assert partitions_text is not None
    partitions = Parser(partitions_text.group(1) + ")").fields(")", None)
    properties = dict(re.findall(r"'([^']+)' = '([^']*)'", DDL))
    return columns, partitions, properties


def compatible(value: Any, declared: Type, path: str, problems: list[str]) -> None:
    """Every member of `value` has a column of a type that can hold it (struct names case-insensitive)."""
    if value is None:
        return
    if isinstance(value, dict):
        if not (isinstance(declared, tuple) and declared[0] == "struct"):
            problems.append(f"{path}: an object, declared {declared}")
            return
        fields = {name.lower(): t for name, t in declared[1].items()}
        for name, member in value.items():
            if name.lower() not in fields:
                problems.append(f"{path}.{name}: no column")
            else:
                compatible(member, fields[name.lower()], f"{path}.{name}", problems)
    elif isinstance(value, list):
        if not (isinstance(declared, tuple) and declared[0] == "array"):
            problems.append(f"{path}: a list, declared {declared}")
            return
        for item in value:
            compatible(item, declared[1], f"{path}[]", problems)
    else:
        kinds = {bool: {"boolean"}, int: {"int", "bigint"}, float: {"double"}, str: {"string"}}
        if declared not in kinds[type(value)]:
            problems.append(f"{path}: {type(value).__name__} {value!r}, declared {declared}")


def shape_names(shape: Shape) -> Type:
    """botocore's shape as the same tree: the members the API can return, whatever this data holds."""
    if shape.type_name == "structure":
        return ("struct", {name.lower(): shape_names(member) for name, member in shape.members.items()})  # type: ignore[attr-defined]
    if shape.type_name == "list":
        return ("array", shape_names(shape.member))  # type: ignore[attr-defined]
    return "leaf"


def covers(declared: Type, shape: Type, path: str, problems: list[str]) -> None:
    """Every member of the API's shape has a column, and every column is a member of the shape."""
    if shape == "leaf" or not isinstance(declared, tuple):
        return
    if declared[0] == "array":
        covers(declared[1], shape[1], f"{path}[]", problems)
        return
    fields = {name.lower(): t for name, t in declared[1].items()}
    for name in sorted(set(shape[1]) - set(fields)):
        problems.append(f"{path}.{name}: in the API's shape, no column")
    for name in sorted(set(fields) - set(shape[1])):
        problems.append(f"{path}.{name}: a column the API's shape does not have")
    for name in set(fields) & set(shape[1]):
        covers(fields[name], shape[1][name], f"{path}.{name}", problems)


def test_the_table_holds_every_member_of_the_archived_summaries(local: Local) -> None:
    # Given October archived on the sandbox, and the table definition parsed
    assert local.cli("backfill", "--from", "2026-10", "--to", "2026-10").returncode == 0
    s3 = local.client("s3")
    summaries = [
        json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        for key in local.object_keys()
        if key.endswith("/summary.json")
    ]
    assert summaries
    columns, _, _ = table()

    # When each summary.json is matched against the columns
    problems: list[str] = []
    for document in summaries:
        compatible(document, ("struct", columns), "", problems)

    # Then every member has a column of a type that holds it
    assert problems == []
    # ... and the invoice summary's columns are exactly the API's InvoiceSummary members
    model = botocore.session.get_session().get_service_model("invoicing")
    covers(
        columns["invoice_summary"],
        shape_names(model.shape_for("InvoiceSummary")),
        "invoice_summary",
        problems,
    )
    assert problems == []


def test_the_partitions_follow_the_key_layout() -> None:
    # Given the table's partition projection
    _, partitions, properties = table()

    # Then it is partitioned by billing period, named and formatted as the archive's keys name it
    assert partitions == {"period": "string"}
    assert properties["projection.enabled"] == "true"
    assert properties["projection.period.type"] == "date"
    assert properties["projection.period.format"] == "yyyy-MM"
    folder = invoice_prefix("invoices", "123456789012", BillingPeriod(2026, 10), "E1")
    segment = re.search(r"/(period=[^/]+)/", folder)
    assert segment is not None
    template = properties["storage.location.template"]
    assert template.endswith("/period=${period}/")
    assert template.replace("${period}", "2026-10").endswith(segment.group(1) + "/")
    assert template.startswith(re.search(r"LOCATION '([^']+)'", DDL).group(1))  # type: ignore[union-attr]


def test_the_jsonl_feed_is_the_archived_summaries_one_per_line(local: Local) -> None:
    # Given October archived
    assert local.cli("backfill", "--from", "2026-10", "--to", "2026-10").returncode == 0
    s3 = local.client("s3")
    archived = {
        key: json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        for key in local.object_keys()
        if key.endswith("/summary.json")
    }

    # When the feed for the table is written
    result = local.cli("report", "--period", "2026-10", "--format", "jsonl")

    # Then it holds each summary exactly, one JSON object per line
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(archived)
    assert sorted(map(json.loads, lines), key=lambda d: d["invoice_id"]) == sorted(
        archived.values(), key=lambda d: d["invoice_id"]
    )
