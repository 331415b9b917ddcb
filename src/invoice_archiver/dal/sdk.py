"""The start-up guard: the AWS SDK this process loaded must know everything the code relies on.

botocore drops response members its model does not know and rejects request members it does not
know, so an SDK older than the API fails late, or worse, succeeds with less data. Each data-access
module keeps next to its code the short list of operations and members it uses (`Needs`); each
handler checks its functions' lists once, at cold start, and fails initialisation with an error that
names the botocore version, where it was loaded from and what is missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import botocore
from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.model import ListShape, Shape, StructureShape

if TYPE_CHECKING:
    from botocore.session import Session


@dataclass(frozen=True)
class Needs:
    """One operation and the members of its request and response the code reads or sends.

    A member path goes through structures by name and through lists implicitly:
    ``InvoiceSummaries.BillType`` is the BillType of each summary in the list.
    """

    service: str
    operation: str
    request: tuple[str, ...] = ()
    response: tuple[str, ...] = ()


class SdkTooOld(RuntimeError):
    """The loaded botocore lacks an operation or member the code uses; nothing would work right."""


def missing(session: Session, needs: Iterable[Needs]) -> dict[str, list[str]]:
    """What `needs` asks for that the session's models lack: {"service.Operation side": [paths]};
    a whole service or operation that is missing maps to an empty list."""
    gaps: dict[str, list[str]] = {}
    for need in needs:
        name = f"{need.service}.{need.operation}"
        try:
            model = session.get_service_model(need.service)
        except (UnknownServiceError, DataNotFoundError):
            gaps[f"service {need.service}"] = []
            continue
        if need.operation not in model.operation_names:
            gaps[f"operation {name}"] = []
            continue
        operation = model.operation_model(need.operation)
        for side, shape, paths in (
            ("request", operation.input_shape, need.request),
            ("response", operation.output_shape, need.response),
        ):
            for path in paths:
                place = gaps.setdefault(f"{name} {side}", []) if not _has(shape, path) else None
                if place is not None and path not in place:
                    place.append(path)
    return gaps


def _has(shape: Shape | None, path: str) -> bool:
    for name in path.split("."):
        while isinstance(shape, ListShape):
            shape = shape.member
        if not isinstance(shape, StructureShape) or name not in shape.members:
            return False
        shape = shape.members[name]
    return True


def ensure(session: Session, needs: Iterable[Needs]) -> None:
    """Raise SdkTooOld naming the botocore version, its location and every missing piece."""
    gaps = missing(session, needs)
    if gaps:
        where = Path(botocore.__file__).resolve().parent
        listed = "; ".join(
            f"{place}: {', '.join(paths)}" if paths else place for place, paths in gaps.items()
        )
        raise SdkTooOld(
            f"botocore {botocore.__version__} loaded from {where} lacks what this function uses: {listed}. "
            "Deploy the stack's SDK layer (layers/sdk/requirements.lock), which Lambda imports before "
            "the runtime's older boto3."
        )
