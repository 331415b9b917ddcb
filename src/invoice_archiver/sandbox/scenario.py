"""Load a JSON scenario file (docs/sandbox.md) and refuse anything the real API could never return.

Every invoice summary is checked against botocore's own `InvoiceSummary` shape (so `Month: 13` or an
`InvoiceType` the API does not have is refused), every key is checked against the format (so a typo is
not silently ignored), and each problem is reported with the invoice it is in.

An optional ``identity`` section sets up several payers (sandbox/identity.py), for example:

    "identity": {"enforce": true, "archive_account": "999999999999", "role_name": "invoice-archiver-reader",
                 "invoice_units": [{"management_account": "123456789012", "receiver": "345678901234",
                                    "name": "EMEA"}],
                 "refuse_assume_role": ["arn:aws:iam::210987654321:role/invoice-archiver-reader"]}

``load_scenario`` returns it with the dataset; ``load`` returns the dataset alone.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from invoice_archiver.models.source import ACCOUNT_ID, ROLE_ARN
from invoice_archiver.sandbox import shapes
from invoice_archiver.sandbox.dataset import FORMAT, Dataset, generate
from invoice_archiver.sandbox.identity import ARCHIVE_ACCOUNT, ROLE_NAME, Identity, InvoiceUnit
from invoice_archiver.sandbox.invoice import TIMESTAMP_FIELDS

TOP_KEYS = ("format", "generate", "invoices", "timeline", "identity")
IDENTITY_KEYS = ("enforce", "archive_account", "role_name", "invoice_units", "refuse_assume_role")
UNIT_KEYS = ("management_account", "receiver", "name", "unit_id", "linked_accounts", "description")
ROLE_NAME_PATTERN = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
INVOICE_KEYS = ("summary", "document", "supplemental_documents", "access_denied")
DOCUMENT_KEYS = ("DocumentType", "DocumentId", "size", "format", "omit")
REQUIRED_SUMMARY = ("AccountId", "InvoiceId", "BillingPeriod")
FORMATS = ("pdf", "xml")


class ScenarioError(ValueError):
    """The scenario file cannot be used; the message says where and why, in one line."""


@dataclass
class Scenario:
    """A scenario file's dataset and, when it has an ``identity`` section, its identity rules and the
    role ARNs moto's STS refuses to let anyone assume."""

    dataset: Dataset
    identity: Identity | None = None
    refused_roles: tuple[str, ...] = field(default=())


def load(path: str | Path) -> Dataset:
    """Read, check and build a scenario's dataset; every problem is a ScenarioError."""
    return load_scenario(path).dataset


def load_scenario(path: str | Path) -> Scenario:
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
    return parse_scenario(text)


def parse(text: str) -> Dataset:
    return parse_scenario(text).dataset


def parse_scenario(text: str) -> Scenario:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    check(data)
    try:
        dataset = Dataset.from_json(text)
    except (ValueError, TypeError, KeyError) as exc:
        raise ScenarioError(str(exc)) from None
    if "identity" not in data:
        return Scenario(dataset)
    identity, refused = _identity(data["identity"])
    return Scenario(dataset, identity, refused)


def _identity(section: Any) -> tuple[Identity, tuple[str, ...]]:
    """The checked ``identity`` section: enforced by default, since declaring it means wanting it."""
    if not isinstance(section, dict):
        raise ScenarioError("'identity' must be an object")
    _known_keys(section, IDENTITY_KEYS, "'identity'")
    enforce = section.get("enforce", True)
    if not isinstance(enforce, bool):
        raise ScenarioError("identity.enforce must be true or false")
    archive = section.get("archive_account", ARCHIVE_ACCOUNT)
    if not isinstance(archive, str) or not ACCOUNT_ID.match(archive):
        raise ScenarioError(f"identity.archive_account must be a 12-digit account id, not {archive!r}")
    role_name = section.get("role_name", ROLE_NAME)
    if not isinstance(role_name, str) or not ROLE_NAME_PATTERN.match(role_name):
        raise ScenarioError(f"identity.role_name {role_name!r} is not an IAM role name")
    units = section.get("invoice_units", [])
    if not isinstance(units, list):
        raise ScenarioError("identity.invoice_units must be a list")
    refused = section.get("refuse_assume_role", [])
    if not isinstance(refused, list) or not all(isinstance(a, str) and ROLE_ARN.match(a) for a in refused):
        raise ScenarioError("identity.refuse_assume_role must be a list of IAM role ARNs")
    identity = Identity.payers(
        [_unit(number, unit) for number, unit in enumerate(units, start=1)],
        archive_account=archive,
        role_name=role_name,
        enforce=enforce,
    )
    return identity, tuple(refused)


def _unit(number: int, unit: Any) -> InvoiceUnit:
    where = f"identity.invoice_units[{number - 1}]"
    if not isinstance(unit, dict):
        raise ScenarioError(f"{where} must be an object")
    _known_keys(unit, UNIT_KEYS, where)
    accounts = [unit.get("management_account"), unit.get("receiver"), *unit.get("linked_accounts", [])]
    if not all(isinstance(a, str) and ACCOUNT_ID.match(a) for a in accounts):
        raise ScenarioError(
            f"{where}: management_account, receiver and linked_accounts must be 12-digit account ids"
        )
    for name in ("name", "unit_id", "description"):
        if not isinstance(unit.get(name, ""), str):
            raise ScenarioError(f"{where}.{name} must be a string")
    return InvoiceUnit(
        management_account=unit["management_account"],
        unit_id=unit.get("unit_id") or f"unit-{number}",
        name=unit.get("name") or f"unit {number}",
        receiver=unit["receiver"],
        linked_accounts=tuple(unit.get("linked_accounts", ())),
        description=unit.get("description", ""),
    )


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
