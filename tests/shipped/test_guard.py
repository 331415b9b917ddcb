"""The start-up guard, proven on the shipped package: without the stack's SDK layer, on the runtime's old
boto3, each function fails its initialisation with an error that says which botocore, where, and what it
lacks; it never starts to archive with less data than the API sends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from assembly import Assembly
from conftest import Invoke

from invoice_archiver.local.pipeline import scheduled_event

LACKS = {
    "lister": ["Filter.ReceiverRole", "InvoiceSummaries.BillType", "InvoiceSummaries.TaxAuthorityStatus"],
    "fetcher": ["SupplementalDocuments.DocumentType", "SupplementalDocuments.DocumentId"],
}

# One synth and one runtime per session: this tier runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("shipped")


@pytest.mark.parametrize("name", ["lister", "fetcher"])
def test_without_the_sdk_layer_each_function_fails_at_init_naming_what_is_missing(
    name: str, shipped: Assembly, invoke: Invoke, runtime_floor: Path
) -> None:
    # Given the shipped function with its own layers left out (only the runtime's botocore 1.42.97)
    function = shipped.functions[name]
    assert function.own_layers, "the stack ships no SDK layer for this function"

    # When Lambda initialises it
    outcome = invoke(function, {}, [scheduled_event_for(name)], layers=[])

    # Then initialisation fails with the named error, before any invocation
    error = outcome.get("init_error")
    assert error is not None, f"{name} started on the runtime's old SDK: {outcome.get('loaded')}"
    assert error["type"] == "SdkTooOld"
    message = error["message"]
    assert "botocore 1.42.97" in message
    [where] = re.findall(r"loaded from (\S+) lacks", message)
    assert Path(where).is_relative_to(runtime_floor.parents[1].resolve())
    for member in LACKS[name]:
        assert member in message


def scheduled_event_for(name: str) -> dict[str, object]:
    from datetime import UTC, datetime

    return scheduled_event(datetime(2026, 10, 5, tzinfo=UTC)) if name == "lister" else {"Records": []}
