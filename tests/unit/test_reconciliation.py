"""The pure parts of a reconciliation: exact sums per invoice (both paths), finality, tolerance, verdicts,
the order credit memos are shown in, and the summary."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from invoice_archiver.logic import cost_grouping
from invoice_archiver.logic.reconciliation import Archived, compare, finality
from invoice_archiver.models.cost import CostData, ExportFormat
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.reconciliation import Finality, Kind, Reason

from .factories import ledger_record

PERIOD = BillingPeriod(2026, 2)
FINAL = Finality(True, "final")
AUGUST = datetime(2026, 2, 1, tzinfo=UTC)


DOUBLE = pa.float64()


def batch(rows: list[dict[str, Any]], cost_type: pa.DataType = DOUBLE) -> pa.RecordBatch:
    """Canonical columns, as the reader hands them to cost_grouping."""
    defaults = {
        "invoice_id": "1", "payer_account": "111111111111", "period_start": AUGUST,
        "invoicing_entity": "Amazon Web Services, Inc.", "billing_entity": "AWS", "bill_type": "Anniversary",
        "charge_type": "Usage", "currency": "USD", "usage_account": "111111111111",
    }  # fmt: skip
    full = [{**defaults, **row} for row in rows]
    columns = {name: [r[name] for r in full] for name in defaults}
    arrays = {name: pa.array(values) for name, values in columns.items()}
    arrays["period_start"] = pa.array(columns["period_start"], pa.timestamp("ms", tz="UTC"))
    arrays["cost"] = pa.array([r["cost"] for r in full], cost_type)
    return pa.RecordBatch.from_pydict(arrays)


def grouped(*batches: pa.RecordBatch) -> CostData:
    data = CostData("test", ExportFormat.CUR2, [])
    for item in batches:
        cost_grouping.add_batch(data, item, PERIOD)
    return data


def test_doubles_are_summed_at_their_shortest_decimal_not_as_floats() -> None:
    # Given 0.1 + 0.2 (0.30000000000000004 in float) and a tax line
    data = grouped(batch([{"cost": 0.1}, {"cost": 0.2}, {"cost": 0.03, "charge_type": "Tax"}]))
    [cost] = data.invoices().values()
    # Then the sums are exact decimals
    assert (cost.pre_tax, cost.tax, cost.total) == (Decimal("0.3"), Decimal("0.03"), Decimal("0.33"))


def test_the_arrow_and_the_python_paths_give_the_same_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[str] = []
    for name in ("_add_in_arrow", "_add_in_python"):
        original = getattr(cost_grouping, name)
        monkeypatch.setattr(
            cost_grouping, name, lambda *a, _f=original, _n=name: (taken.append(_n), _f(*a))[1]
        )
    # Given many lines with up to 8 decimals over 30 invoices, in two currencies and with tax lines
    rng = random.Random(7)
    rows = [
        {"invoice_id": str(rng.randrange(30)), "currency": rng.choice(["USD", "EUR"]),
         "charge_type": rng.choice(["Usage", "Tax", "Credit"]),
         "cost": float(Decimal(rng.randrange(-10**9, 10**10)) / 10**8)}
        for _ in range(5000)
    ]  # fmt: skip
    arrow = grouped(batch(rows))
    # When one tiny value (more than 20 decimals) forces the batch onto the Python path
    python = grouped(batch([*rows, {"cost": 1e-25, "invoice_id": "tiny"}]))
    # Then every invoice's sums are the same, to the last digit
    assert taken == ["_add_in_arrow", "_add_in_python"]
    tiny = python.invoices().pop(("tiny", "USD"))
    assert tiny.pre_tax == Decimal("1E-25")
    assert {k: (v.pre_tax, v.tax) for k, v in arrow.invoices().items()} == {
        k: (v.pre_tax, v.tax) for k, v in python.invoices().items() if k != ("tiny", "USD")
    }
    # And both equal the exact Decimal sum of the values as written
    expected: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        key = (row["invoice_id"], row["currency"])
        expected[key] = expected.get(key, Decimal(0)) + Decimal(repr(row["cost"]))
    assert {k: v.total for k, v in arrow.invoices().items()} == expected


def test_a_sum_that_could_overflow_decimal128_is_done_in_python() -> None:
    data = grouped(batch([{"cost": 9e17}, {"cost": 9e17}, {"cost": 0.5}]))
    [cost] = data.invoices().values()
    assert cost.total == Decimal("1800000000000000000.5")


@pytest.mark.parametrize(
    ("cost_type", "values"),
    [
        (pa.string(), ["1.10", "2.205"]),
        (pa.decimal128(20, 4), [Decimal("1.1"), Decimal("2.205")]),
        (pa.int64(), [1, 2]),
    ],
)
def test_text_decimal_and_integer_costs_are_exact(cost_type: pa.DataType, values: list[Any]) -> None:
    data = grouped(batch([{"cost": v} for v in values], cost_type))
    [cost] = data.invoices().values()
    assert cost.total == sum((Decimal(str(v)) for v in values), Decimal(0))


def test_lines_of_another_period_are_counted_and_left_out() -> None:
    data = grouped(batch([{"cost": 1.0}, {"cost": 5.0, "period_start": datetime(2026, 3, 1, tzinfo=UTC)}]))
    assert (data.lines, data.other_period_lines) == (1, 1)
    assert next(iter(data.invoices().values())).total == 1


def test_blank_and_null_invoice_ids_are_lines_without_an_invoice() -> None:
    data = grouped(batch([{"cost": 1.5, "invoice_id": ""}, {"cost": 2.5, "invoice_id": None}, {"cost": 1.0}]))
    assert data.uninvoiced()[("111111111111", "Amazon Web Services, Inc.", "USD")].amount == 4
    assert data.invoiced_lines == 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [(float("nan"), "not a finite number"), (float("inf"), "not a finite number")],
)
def test_non_finite_costs_are_refused(value: float, problem: str) -> None:
    with pytest.raises(cost_grouping.UnreadableLines, match=problem):
        grouped(batch([{"cost": value}]))


def test_too_many_distinct_invoices_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cost_grouping, "MAX_GROUPS", 10)
    with pytest.raises(cost_grouping.UnreadableLines, match="more than 10 distinct"):
        grouped(batch([{"cost": 1.0, "invoice_id": str(n)} for n in range(11)]))


# --- finality -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "final", "why"),
    [
        (datetime(2026, 2, 20, tzinfo=UTC), False, "not over"),
        (datetime(2026, 3, 5, tzinfo=UTC), False, "before day 10"),
        (datetime(2026, 3, 10, tzinfo=UTC), True, "period is over"),
        (datetime(2026, 6, 1, tzinfo=UTC), True, "period is over"),
    ],
)
def test_finality_by_the_calendar(now: datetime, final: bool, why: str) -> None:
    state = finality(PERIOD, now, grouped(batch([{"cost": 1.0}])))
    assert state.final is final
    assert why in state.reason


def test_an_export_without_any_invoice_id_is_not_final_whatever_the_date() -> None:
    state = finality(
        PERIOD, datetime(2026, 9, 1, tzinfo=UTC), grouped(batch([{"cost": 1.0, "invoice_id": ""}]))
    )
    assert not state.final
    assert "no line carries an invoice id" in state.reason


# --- verdicts -------------------------------------------------------------------------------------------


def archived(
    invoice_id: str, total: str, tax: str, *, account: str = "111111111111", **summary: Any
) -> Archived:
    before = str(Decimal(total) - Decimal(tax))
    base = {"TotalAmount": total, "TotalAmountBeforeTax": before, "CurrencyCode": "USD",
            "AmountBreakdown": {"Taxes": {"TotalAmount": tax}}}  # fmt: skip
    body = {"InvoiceId": invoice_id, "InvoiceType": "INVOICE", "BaseCurrencyAmount": base,
            "Entity": {"InvoicingEntity": "Amazon Web Services, Inc."}, **summary}  # fmt: skip
    return Archived(f"invoices/account={account}/period=2026-02/{invoice_id}/summary.json", account, body)


def verdicts(data: CostData, items: list[Archived], **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"state": FINAL, "tolerance": None, "archive_accounts": set(), "ledger": {}}
    options.update(kwargs)
    outcome = compare(PERIOD, data, items, generated_at="now", **options)
    return {r.invoice_id: r for r in outcome.invoices} | {"_outcome": outcome}


def test_a_difference_of_one_cent_is_rounding_and_two_cents_differ() -> None:
    data = grouped(batch([{"invoice_id": "A", "cost": 10.004}, {"invoice_id": "B", "cost": 10.02}]))
    found = verdicts(data, [archived("A", "10.00", "0.00"), archived("B", "10.00", "0.00")])
    assert (found["A"].kind, found["A"].reason, found["A"].difference.total) == (
        Kind.MATCHED,
        Reason.ROUNDING,
        Decimal("0.004"),
    )
    assert (found["B"].kind, found["B"].problem, found["B"].tolerance) == (
        Kind.AMOUNTS_DIFFER,
        True,
        Decimal("0.01"),
    )
    assert "total, pre-tax differ" in found["B"].detail


def test_the_default_tolerance_follows_the_invoices_decimal_places() -> None:
    # A JPY-like invoice stated in whole units tolerates one unit
    data = grouped(batch([{"invoice_id": "J", "cost": 1234.6}]))
    [result] = [r for r in verdicts(data, [archived("J", "1235", "0")]).values() if hasattr(r, "kind")]
    assert (result.kind, result.tolerance) == (Kind.MATCHED, Decimal(1))


def test_the_matching_currency_section_is_compared() -> None:
    # Given cost data in EUR and an invoice whose base is USD but whose payment currency is EUR
    data = grouped(batch([{"invoice_id": "E", "cost": 92.13, "currency": "EUR"}]))
    payment = {"TotalAmount": "92.13", "TotalAmountBeforeTax": "92.13", "CurrencyCode": "EUR"}
    found = verdicts(data, [archived("E", "100.00", "0", PaymentCurrencyAmount=payment)])
    assert (found["E"].kind, found["E"].compared_as) == (Kind.MATCHED, "payment")
    # And a currency the invoice does not state at all is said so
    data = grouped(batch([{"invoice_id": "E", "cost": 92.13, "currency": "GBP"}]))
    found = verdicts(data, [archived("E", "100.00", "0", PaymentCurrencyAmount=payment)])
    assert found["E"].kind is Kind.CURRENCY_DIFFERS
    assert "base USD, payment EUR" in found["E"].detail


def test_not_archived_says_what_the_ledger_knows() -> None:
    data = grouped(batch([{"invoice_id": "F", "cost": 5.0}, {"invoice_id": "N", "cost": 5.0}]))
    failed = ledger_record({"status": "FAILED", "last_error": "GetInvoicePDF: AccessDenied"})
    assert failed is not None
    ledger = {"F": failed}
    found = verdicts(data, [], ledger=ledger)
    assert found["F"].detail == "ledger: FAILED (GetInvoicePDF: AccessDenied)"
    assert "never listed" in found["N"].detail
    assert found["_outcome"].missing_from_archive == 2


def test_archived_invoices_the_export_does_not_cover_are_explained() -> None:
    data = grouped(batch([{"invoice_id": "A", "cost": 10.0}]))
    other_account = archived("X", "5.00", "0", account="222222222222")
    other_entity = archived("Y", "5.00", "0", Entity={"InvoicingEntity": "AWS Marketplace"})
    nothing = archived("Z", "0.00", "0")
    unexplained = archived("W", "7.00", "0")
    found = verdicts(data, [archived("A", "10.00", "0"), other_account, other_entity, nothing, unexplained])
    assert (found["X"].reason, found["X"].problem) == (Reason.ACCOUNT_NOT_IN_EXPORT, False)
    assert (found["Y"].reason, found["Y"].problem) == (Reason.ENTITY_NOT_IN_EXPORT, False)
    assert (found["Z"].reason, found["Z"].problem) == (Reason.ZERO_AMOUNT, False)
    assert (found["W"].reason, found["W"].problem) == (Reason.NONE, True)
    assert found["_outcome"].problems == 1


def test_credit_memos_follow_the_invoice_they_credit_and_the_summary_adds_up() -> None:
    rows = [
        {"invoice_id": "100", "cost": 50.0},
        {"invoice_id": "050", "cost": -20.0, "bill_type": "Refund"},
        {"invoice_id": "200", "cost": 30.0},
        {"invoice_id": "", "cost": 0.5},
    ]
    data = grouped(batch(rows))
    memo = archived("050", "-20.00", "0", InvoiceType="CREDIT_MEMO", OriginalInvoiceId="100")
    outcome = verdicts(data, [archived("200", "30.00", "0"), memo, archived("100", "50.00", "0")])["_outcome"]
    assert [r.invoice_id for r in outcome.invoices] == ["100", "050", "200"]
    [row] = outcome.summary
    assert row.counts == {"matched": 3, "lines_without_invoice": 1}
    assert (row.cost_data_total, row.archived_total, row.uninvoiced_total) == (
        Decimal("60.5"),
        Decimal("60.00"),
        Decimal("0.5"),
    )
    assert outcome.problems == 0
