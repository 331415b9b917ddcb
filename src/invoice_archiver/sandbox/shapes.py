"""Validate wire-level JSON (AWS JSON 1.0) against botocore's shape model for the Invoicing service.

The emulator uses it on requests (so it answers the same ValidationException the service does) and the
contract tests use it on every response body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import ListShape, OperationModel, ServiceModel, Shape, StructureShape


@dataclass(frozen=True)
class Problem:
    """One constraint violation: the member path (e.g. ``Filter.BillingPeriod.Month``) and why."""

    path: str
    message: str
    kind: str = "constraint"  # "constraint" or "type" (a type mismatch cannot be parsed)


@lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    model: ServiceModel = botocore.session.get_session().get_service_model("invoicing")
    return model


def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


def validate(shape: Shape, value: Any, path: str = "") -> list[Problem]:
    """Every violation of ``shape`` by the decoded JSON ``value`` (types, required, enums, ranges)."""
    problems: list[Problem] = []
    _check(shape, value, path, problems)
    return problems


def validate_output(operation_name: str, body: Any) -> list[Problem]:
    output = operation(operation_name).output_shape
    assert output is not None
    return validate(output, body)


def _check(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    kind = shape.type_name
    label = path or shape.name
    if kind == "structure":
        _check_structure(shape, value, path, problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(Problem(label, "Member must be a list", "type"))
            return
        assert isinstance(shape, ListShape)
        _check_range(shape, len(value), label, problems, "length")
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(Problem(label, "Member must be a string", "type"))
            return
        _check_string(shape, value, label, problems)
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(Problem(label, "Member must be an integer", "type"))
            return
        _check_range(shape, value, label, problems, "value")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(Problem(label, "Member must be a timestamp in epoch seconds", "type"))
    elif kind == "boolean" and not isinstance(value, bool):
        problems.append(Problem(label, "Member must be a boolean", "type"))


def _check_structure(shape: Shape, value: Any, path: str, problems: list[Problem]) -> None:
    assert isinstance(shape, StructureShape)
    if not isinstance(value, dict):
        problems.append(Problem(path or shape.name, "Member must be a structure", "type"))
        return
    for name in shape.required_members:
        if value.get(name) is None:
            problems.append(Problem(_join(path, name), "Member must not be null"))
    for name, member in shape.members.items():
        if value.get(name) is not None:
            _check(member, value[name], _join(path, name), problems)


def _check_string(shape: Shape, value: str, label: str, problems: list[Problem]) -> None:
    enum: list[str] = shape.metadata.get("enum", [])
    if enum and value not in enum:
        problems.append(Problem(label, f"Member must satisfy enum value set: [{', '.join(enum)}]"))
    _check_range(shape, len(value), label, problems, "length")
    pattern = shape.metadata.get("pattern")
    if pattern and not _fullmatch(pattern, value):
        problems.append(Problem(label, f"Member must satisfy regular expression pattern: {pattern}"))


def _check_range(shape: Shape, value: int, label: str, problems: list[Problem], what: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        problems.append(Problem(label, f"Member must have {what} greater than or equal to {low}"))
    if high is not None and value > high:
        problems.append(Problem(label, f"Member must have {what} less than or equal to {high}"))


def _fullmatch(pattern: str, value: str) -> bool:
    """A model pattern Python's `re` cannot compile (Java's `\\p{L}` classes, in ListInvoiceUnits'
    names) is not checked: better no check than a crash."""
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return True


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
