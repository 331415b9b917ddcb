"""Load a JSON scenario file (docs/sandbox.md) and refuse anything the real API could never return.

Every invoice summary is checked against botocore's own `InvoiceSummary` shape (so `Month: 13` or an
`InvoiceType` the API does not have is refused), every key is checked against the format (so a typo is
not silently ignored), and each problem is reported with the invoice it is in.
"""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from invoice_archiver.sandbox import shapes
from invoice_archiver.sandbox.dataset import FORMAT, TIMESTAMP_FIELDS, Dataset, generate

TOP_KEYS = ("format", "generate", "invoices", "timeline")
INVOICE_KEYS = ("summary", "document", "supplemental_documents", "access_denied")
DOCUMENT_KEYS = ("DocumentType", "DocumentId", "size", "format", "omit")
REQUIRED_SUMMARY = ("AccountId", "InvoiceId", "BillingPeriod")
FORMATS = ("pdf", "xml")


class ScenarioError(ValueError):
    """The scenario file cannot be used; the message says where and why, in one line."""


def load(path: str | Path) -> Dataset:
    """Read, check and build a scenario; every problem is a ScenarioError."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("no such file") from None
    except IsADirectoryError:
        raise ScenarioError("is a folder, not a scenario file") from None
    except UnicodeDecodeError:
        raise ScenarioError("is not UTF-8 text") from None
    except OSError as exc:
        raise ScenarioError(exc.strerror or str(exc)) from None
    return parse(text)


def parse(text: str) -> Dataset:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    check(data)
    try:
        return Dataset.from_json(text)
    except (ValueError, TypeError, KeyError) as exc:
        raise ScenarioError(str(exc)) from None


def check(data: Any) -> None:
    if not isinstance(data, dict):
        raise ScenarioError(
            'a scenario is a JSON object: {"format": ..., "generate": {...}, "invoices": [...]}'
        )
    _known_keys(data, TOP_KEYS, "the scenario")
    if data.get("format", FORMAT) != FORMAT:
        raise ScenarioError(f"format {data.get('format')!r} is not {FORMAT!r}")
    if "generate" in data:
        _check_generate(data["generate"])
    invoices = data.get("invoices", [])
    if not isinstance(invoices, list):
        raise ScenarioError("'invoices' must be a list")
    for number, item in enumerate(invoices, start=1):
        _check_invoice(number, item)
    if not invoices and "generate" not in data:
        raise ScenarioError("the scenario holds no invoices: add 'invoices' or 'generate'")


def _check_generate(params: Any) -> None:
    if not isinstance(params, dict):
        raise ScenarioError("'generate' must be an object of generator settings")
    allowed = tuple(inspect.signature(generate).parameters)
    _known_keys(params, allowed, "'generate'")


def _check_invoice(number: int, item: Any) -> None:
    where = f"invoice #{number}"
    if not isinstance(item, dict):
        raise ScenarioError(f"{where} must be an object with a 'summary'")
    summary = item.get("summary")
    if isinstance(summary, dict) and isinstance(summary.get("InvoiceId"), str):
        where = f"invoice #{number} ({summary['InvoiceId']})"
    _known_keys(item, INVOICE_KEYS, where)
    if not isinstance(summary, dict):
        raise ScenarioError(f"{where}: 'summary' must be an InvoiceSummary object")
    missing = [name for name in REQUIRED_SUMMARY if summary.get(name) in (None, "")]
    if missing:
        raise ScenarioError(f"{where}: summary needs {', '.join(missing)}")
    wire = dict(summary)
    for name in TIMESTAMP_FIELDS:
        if name in wire:
            wire[name] = _epoch(wire[name], f"{where}: summary.{name}")
    problems = shapes.validate(shapes.service_model().shape_for("InvoiceSummary"), wire, "summary")
    if problems:
        first = problems[0]
        raise ScenarioError(
            f"{where}: {first.path}: {_plain(first.message)} (value {_at(wire, first.path)!r})"
        )
    _check_document(where, item.get("document", {}), DOCUMENT_KEYS, "document")
    supplemental = item.get("supplemental_documents", [])
    if not isinstance(supplemental, list):
        raise ScenarioError(f"{where}: 'supplemental_documents' must be a list")
    types = _supplemental_types()
    for index, doc in enumerate(supplemental):
        label = f"supplemental_documents[{index}]"
        _check_document(where, doc, DOCUMENT_KEYS, label)
        if doc.get("DocumentType") not in types:
            raise ScenarioError(
                f"{where}: {label}.DocumentType {doc.get('DocumentType')!r} is not one of {', '.join(types)}"
            )
        if not isinstance(doc.get("DocumentId"), str) or not doc["DocumentId"]:
            raise ScenarioError(f"{where}: {label}.DocumentId must be a non-empty string")
    if not isinstance(item.get("access_denied", False), bool):
        raise ScenarioError(f"{where}: 'access_denied' must be true or false")


def _supplemental_types() -> list[str]:
    """The DocumentType values GetInvoicePDF's SupplementalDocuments may hold."""
    shape: Any = shapes.operation("GetInvoicePDF").output_shape
    for member in ("InvoicePDF", "SupplementalDocuments"):
        shape = shape.members[member]
    types: list[str] = shape.member.members["DocumentType"].enum
    return types


def _check_document(where: str, doc: Any, allowed: tuple[str, ...], label: str) -> None:
    if not isinstance(doc, dict):
        raise ScenarioError(f"{where}: {label} must be an object")
    _known_keys(doc, allowed, f"{where}: {label}")
    size = doc.get("size", 8192)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ScenarioError(f"{where}: {label}.size must be a positive number of bytes, not {size!r}")
    if doc.get("format", "pdf") not in FORMATS:
        raise ScenarioError(f"{where}: {label}.format must be 'pdf' or 'xml', not {doc.get('format')!r}")


def _known_keys(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [key for key in data if key not in allowed]
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r} (expected one of: {', '.join(allowed)})")


def _epoch(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioError(f"{where}: {value!r} is not an ISO 8601 timestamp or epoch seconds") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _plain(message: str) -> str:
    """botocore's wording, shortened: 'Member must satisfy enum value set: [...]' -> 'must be one of ...'."""
    return message.replace("Member must satisfy enum value set: ", "must be one of ").replace("Member ", "")


def _at(data: Any, path: str) -> Any:
    value = data
    for part in path.split(".")[1:]:
        name, _, index = part.partition("[")
        value = value.get(name) if isinstance(value, dict) else None
        if index and isinstance(value, list):
            value = value[int(index.rstrip("]"))]
    return value
