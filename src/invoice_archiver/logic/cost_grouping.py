"""Cost lines summed per invoice, one record batch at a time, in exact Decimal arithmetic.

A batch holds the canonical columns of models.cost (whatever the export's format). Its lines are summed
per GroupKey (invoice id, payer, currency, entities, bill type, tax or not); only these sums are kept, so
memory grows with the number of invoices, never with the number of lines.

Money is never summed as float. Data Exports store costs as DOUBLE in Parquet (and as text in CSV): each
double is taken at its shortest decimal representation (the digits `repr` prints, which read back as
the same double), so 0.1 is 0.1, not 0.1000000000000000055511151231257827. Arrow does this exactly and
fast: double -> shortest text -> decimal128(38, 20) (a value needing more than 20 decimals fails the
cast instead of being rounded), then a grouped sum. When that path cannot be exact (more than 20
decimals, or a sum that could overflow 38 digits) the batch is summed in Python's Decimal instead, value
by value; both paths give the same result.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from invoice_archiver.models.cost import EXACT, TAX, CostData, GroupKey
from invoice_archiver.models.period import BillingPeriod

KEYS = (
    "invoice_id",
    "payer_account",
    "currency",
    "invoicing_entity",
    "billing_entity",
    "bill_type",
    "charge_type",
)
MAX_TEXT = 1024  # an id, code or entity name longer than this is not a Data Exports value
# Far beyond any real billing period (AWS Organizations' accounts, a payer's invoices in a month): an
# export past these is not read to the end, whatever memory it would take.
MAX_GROUPS = 200_000
MAX_ACCOUNTS = 100_000
_SCALE = 20
_EXACT_TYPE = pa.decimal128(38, _SCALE)
# decimal128(38, 20) holds 18 integer digits; a batch whose rows x largest |cost| stays below this cannot
# overflow its sum.
_SAFE_SUM = Decimal(10) ** 17


class UnreadableLines(ValueError):
    """A batch that is not cost data: the message names the canonical column and what is wrong."""

    def __init__(self, column: str, problem: str) -> None:
        super().__init__(f"{column}: {problem}")
        self.column = column
        self.problem = problem


def add_batch(data: CostData, batch: pa.RecordBatch, period: BillingPeriod) -> None:
    """Add the batch's lines of `period` to `data` (lines of another period are only counted)."""
    table = pa.Table.from_batches([batch])
    table = _in_period(data, table, period)
    data.lines += table.num_rows
    if table.num_rows == 0:
        return
    keys = {name: _text(table, name) for name in KEYS}
    usage = _text(table, "usage_account")
    data.usage_accounts.update(str(a).strip() for a in pc.unique(usage).to_pylist() if a and str(a).strip())
    costs = table.column("cost").combine_chunks()
    if costs.null_count:
        raise UnreadableLines("cost", f"{costs.null_count} line(s) without an amount")
    exact = _exact(costs)
    with localcontext(EXACT):
        if exact is None:
            _add_in_python(data, keys, costs)
        else:
            _add_in_arrow(data, keys, exact)
    if len(data.groups) > MAX_GROUPS:
        raise UnreadableLines("invoice_id", f"more than {MAX_GROUPS:,} distinct invoices and charges")
    if len(data.usage_accounts) > MAX_ACCOUNTS:
        raise UnreadableLines("usage_account", f"more than {MAX_ACCOUNTS:,} distinct accounts")


def _in_period(data: CostData, table: pa.Table, period: BillingPeriod) -> pa.Table:
    column = table.column("period_start")
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        month = pc.strftime(column, format="%Y-%m")
    else:
        month = pc.utf8_slice_codeunits(pc.cast(column, pa.string()), 0, 7)
    keep = pc.fill_null(pc.equal(month, str(period)), False)
    kept = table.filter(keep)
    data.other_period_lines += table.num_rows - kept.num_rows
    return kept


def _text(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    column = pc.cast(table.column(name).combine_chunks(), pa.string())
    longest = pc.max(pc.utf8_length(column)).as_py()
    if longest is not None and longest > MAX_TEXT:
        raise UnreadableLines(name, f"a value of {longest:,} characters (at most {MAX_TEXT:,} expected)")
    return column


def _exact(costs: pa.Array) -> pa.Array | None:
    """The costs as decimal128(38, 20), exactly; None when only Python's Decimal can sum them exactly."""
    kind = costs.type
    if pa.types.is_floating(kind):
        if not pc.all(pc.is_finite(costs)).as_py():
            raise UnreadableLines("cost", "a value that is not a finite number (NaN or infinity)")
        as_text = pc.cast(costs, pa.string())  # Arrow prints a double's shortest round-trip digits
    elif pa.types.is_integer(kind) or pa.types.is_decimal(kind) or pa.types.is_string(kind):
        as_text = costs if pa.types.is_string(kind) else None
    else:
        raise UnreadableLines("cost", f"of type {kind}, not a number")
    try:
        exact = pc.cast(as_text if as_text is not None else costs, _EXACT_TYPE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # more than 20 decimals, or text that is no number: Python says which
    low, high = (value.as_py() for value in pc.min_max(exact).values())
    largest = max(abs(low), abs(high))
    return exact if largest * len(exact) < _SAFE_SUM else None


def _add_in_arrow(data: CostData, keys: dict[str, pa.Array], exact: pa.Array) -> None:
    table = pa.table({**keys, "cost": exact})
    grouped = table.group_by(list(KEYS), use_threads=False).aggregate([("cost", "sum"), ("cost", "count")])
    for row in grouped.to_pylist():
        data.add(_key(row), _plain(row["cost_sum"]), int(row["cost_count"]))


def _add_in_python(data: CostData, keys: dict[str, pa.Array], costs: pa.Array) -> None:
    columns = [keys[name].to_pylist() for name in KEYS]
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for values, cost in zip(zip(*columns, strict=True), costs.to_pylist(), strict=True):
        entry = sums.setdefault(values, [Decimal(0), 0])
        entry[0] += _decimal(cost)
        entry[1] += 1
    for values, (amount, lines) in sums.items():
        data.add(_key(dict(zip(KEYS, values, strict=True))), _plain(amount), lines)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnreadableLines("cost", "a value that is not a finite number (NaN or infinity)")
        return Decimal(repr(value))
    if isinstance(value, Decimal | int):
        return Decimal(value)
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        shown = str(value)[:40]
        raise UnreadableLines("cost", f"{shown!r} is not a number") from None
    if not parsed.is_finite():
        raise UnreadableLines("cost", "a value that is not a finite number (NaN or infinity)")
    return parsed


def _plain(amount: Decimal) -> Decimal:
    """A sum without the trailing zeros of decimal128's fixed scale (1.50000000000000000000 -> 1.5)."""
    if amount == 0:
        return Decimal(0)
    reduced = amount.normalize(EXACT)
    return reduced.quantize(Decimal(1)) if reduced.as_tuple().exponent > 0 else reduced  # type: ignore[operator]


def _key(row: dict[str, Any]) -> GroupKey:
    def text(name: str) -> str:
        return str(row.get(name) or "").strip()

    return GroupKey(
        invoice_id=text("invoice_id") or None,
        payer_account=text("payer_account"),
        currency=text("currency").upper(),
        invoicing_entity=text("invoicing_entity"),
        billing_entity=text("billing_entity"),
        bill_type=text("bill_type"),
        tax=text("charge_type") == TAX,
    )
