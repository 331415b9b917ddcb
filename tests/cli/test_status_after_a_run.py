"""`invoice-archiver status` after a real run of the pipeline on the sandbox (the real handlers, then
the console script's entry point in this process)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from invoice_archiver.sandbox.dataset import generate
from tests.integration.conftest import Pipeline


def test_status_shows_what_is_archived_and_what_failed(
    make_pipeline: Callable[..., Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a period where one invoice is denied and the rest are archived
    dataset = generate(
        seed=8,
        accounts=("123456789012",),
        periods=((2026, 10),),
        invoices_per_account_period=6,
        access_denied_rate=0.3,
    )
    denied = [i for i in dataset.invoices if i.access_denied]
    assert denied
    pipeline = make_pipeline(dataset)
    pipeline.run()

    # When a person asks for the status
    from invoice_archiver.cli.main import main

    code = main(["status", "--table", pipeline.settings.ledger_table])

    # Then the counts per account and period match the ledger, each failure is named with its reason,
    # and the exit code says that invoices failed
    output = capsys.readouterr().out
    assert code == 1
    row = next(line for line in output.splitlines() if line.startswith("123456789012"))
    archived, failed, in_flight = (int(v) for v in row.split()[2:5])
    assert (archived, failed, in_flight) == (len(dataset.invoices) - len(denied), len(denied), 0)
    for invoice in denied:
        [line] = [x for x in output.splitlines() if f" 123456789012 2026-10 {invoice.invoice_id}: " in x]
        assert line.startswith("! FAILED ")
        assert "AccessDeniedException" in line
