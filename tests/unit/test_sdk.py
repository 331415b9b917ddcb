"""invoice_archiver.dal.sdk and the SDK that ships: the cold-start guard; one boto3 for tests and Lambda."""

from __future__ import annotations

import re
from pathlib import Path

import botocore
import pytest

from invoice_archiver.dal import archive, clients, events, invoicing, queue, sdk
from invoice_archiver.dal.ledger import invoices, lister_view

ROOT = Path(__file__).resolve().parents[2]
SDK_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")


def _pins(path: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", path.read_text(), flags=re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_the_shipped_sdk_is_the_sdk_the_tests_run() -> None:
    # Given the SDK layer's lock and the development lock
    shipped = _pins(ROOT / "layers" / "sdk" / "requirements.lock")
    tested = _pins(ROOT / "requirements-dev.lock")

    # Then the layer holds exactly the SDK packages, at the versions the tests run with
    assert set(shipped) == set(SDK_PACKAGES)
    assert {name: tested[name] for name in SDK_PACKAGES} == shipped
    assert botocore.__version__ == shipped["botocore"]
    # And every line is pinned by hash (pip --require-hashes refuses anything else)
    lines = [
        line for line in (ROOT / "layers/sdk/requirements.lock").read_text().splitlines() if "==" in line
    ]
    assert all(re.search(r"--hash=sha256:[0-9a-f]{64}$", line) for line in lines)


def test_the_installed_sdk_knows_everything_the_functions_use() -> None:
    needs = [
        invoicing.LISTING,
        invoicing.DOCUMENTS,
        *archive.WRITING,
        *invoices.RECORDING,
        queue.SENDING,
        queue.QUARANTINING,
        lister_view.LISTING,
        events.PUBLISHING,
    ]
    assert sdk.missing(clients.botocore_session(), needs) == {}


def test_a_missing_member_operation_or_service_is_named() -> None:
    # Given needs the installed SDK cannot meet
    needs = [
        sdk.Needs("invoicing", "ListInvoiceSummaries", request=("Filter.NoSuchFilter",)),
        sdk.Needs("invoicing", "GetInvoicePDF", response=("InvoicePDF.SupplementalDocuments.NoSuchMember",)),
        sdk.Needs("s3", "NoSuchOperation"),
        sdk.Needs("no-such-service", "Anything"),
    ]

    # When the guard checks them, Then it names the version, its location and every gap
    with pytest.raises(sdk.SdkTooOld) as raised:
        sdk.ensure(clients.botocore_session(), needs)
    message = str(raised.value)
    assert (
        f"botocore {botocore.__version__} loaded from {Path(botocore.__file__).resolve().parent}" in message
    )
    assert "invoicing.ListInvoiceSummaries request: Filter.NoSuchFilter" in message
    assert "invoicing.GetInvoicePDF response: InvoicePDF.SupplementalDocuments.NoSuchMember" in message
    assert "operation s3.NoSuchOperation" in message
    assert "service no-such-service" in message


def test_list_members_are_walked_through_their_items() -> None:
    session = clients.botocore_session()
    assert (
        sdk.missing(
            session,
            [sdk.Needs("invoicing", "ListInvoiceSummaries", response=("InvoiceSummaries.InvoiceId",))],
        )
        == {}
    )
    assert sdk.missing(
        session, [sdk.Needs("invoicing", "ListInvoiceSummaries", response=("InvoiceSummaries.Nope",))]
    ) == {"invoicing.ListInvoiceSummaries response": ["InvoiceSummaries.Nope"]}
