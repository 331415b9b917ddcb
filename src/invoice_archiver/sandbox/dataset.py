"""Invoice datasets for the sandbox: a deterministic seeded generator and a JSON scenario format.

An `Invoice` holds the summary exactly as boto3 returns it from ListInvoiceSummaries (tz-aware UTC
datetimes, amounts as strings) plus the documents GetInvoicePDF hands out. See docs/sandbox.md.
"""

from __future__ import annotations

import calendar
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from invoice_archiver.models.documents import SUPPLEMENTAL_DOCUMENT_TYPES
from invoice_archiver.sandbox import timeline
from invoice_archiver.sandbox.amounts import CURRENCIES, amounts
from invoice_archiver.sandbox.documents import Document, MediaType
from invoice_archiver.sandbox.invoice import (
    Invoice,
    Period,
    invoice_from_json,
    invoice_to_json,
    parse_period,
)
from invoice_archiver.sandbox.timeline import Change

FORMAT = "invoice-archiver-sandbox/1"
RECEIVER_ROLES = ("SELLER", "RESELLER", "BUYER")
RECEIVER_ROLE_DATA_START = datetime(2025, 6, 1, tzinfo=UTC)
DEFAULT_ACCOUNTS = ("123456789012", "210987654321", "345678901234")
ENTITIES = (
    ("AWS", "Amazon Web Services, Inc."),
    ("AWS", "Amazon Web Services EMEA SARL"),
    ("AWS", "Amazon Web Services India Private Limited"),
    ("AWS_MARKETPLACE", "AWS Marketplace"),
)
AWKWARD_IDS = ("a/b", "..", "../../etc/passwd", "with space", "unicodé-€-発票", "percent%2Fid", "q?x=1#f")


@dataclass
class Dataset:
    invoices: list[Invoice]
    # Changes over time (sandbox/timeline.py): `invoices` is the state before the first of them.
    timeline: tuple[Change, ...] = ()
    _by_id: dict[str, Invoice] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {}
        for inv in self.invoices:
            if inv.invoice_id in self._by_id:
                raise ValueError(f"duplicate invoice id {inv.invoice_id!r}")
            self._by_id[inv.invoice_id] = inv

    def invoice(self, invoice_id: str) -> Invoice:
        return self._by_id[invoice_id]

    def at(self, moment: datetime) -> Dataset:
        """The dataset as it is at `moment`, with every timeline change due by then applied."""
        if not self.timeline:
            return self
        return Dataset(timeline.apply(self.invoices, self.timeline, moment))

    def get(self, invoice_id: str) -> Invoice | None:
        return self._by_id.get(invoice_id)

    @property
    def accounts(self) -> list[str]:
        return sorted({inv.account_id for inv in self.invoices})

    @property
    def periods(self) -> list[Period]:
        return sorted({inv.billing_period for inv in self.invoices})

    @property
    def invoice_count(self) -> int:
        return len(self.invoices)

    @property
    def document_count(self) -> int:
        return sum(len(inv.documents) for inv in self.invoices)

    def describe(self) -> str:
        periods = ", ".join(f"{y:04d}-{m:02d}" for y, m in self.periods)
        return (
            f"{self.invoice_count} invoice{'' if self.invoice_count == 1 else 's'}, "
            f"{self.document_count} document{'' if self.document_count == 1 else 's'}; "
            f"accounts: {', '.join(self.accounts)}; billing periods: {periods}"
        )

    def to_json(self) -> str:
        data: dict[str, Any] = {"format": FORMAT, "invoices": [invoice_to_json(i) for i in self.invoices]}
        if self.timeline:
            data["timeline"] = [timeline.to_json(change) for change in self.timeline]
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Dataset:
        data = json.loads(text)
        if data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"unsupported scenario format {data.get('format')!r}; expected {FORMAT!r}")
        invoices: list[Invoice] = []
        if "generate" in data:
            invoices.extend(generate(**_generate_kwargs(data["generate"])).invoices)
        invoices.extend(invoice_from_json(item) for item in data.get("invoices", []))
        changes = timeline.parse(data.get("timeline", []), {inv.invoice_id for inv in invoices})
        return cls(invoices, changes)

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


# --- generator -----------------------------------------------------------------------------------


def generate(
    *,
    seed: int = 0,
    accounts: Sequence[str] = DEFAULT_ACCOUNTS,
    periods: Sequence[Period] = ((2026, 8), (2026, 9), (2026, 10)),
    invoices_per_account_period: int = 10,
    receiver_roles: Sequence[str] = RECEIVER_ROLES,
    document_size: int | tuple[int, int] = 8192,
    supplemental: tuple[int, int] = (0, 4),
    awkward_ids: bool = False,
    access_denied_rate: float = 0.0,
    xml_e_invoice_rate: float = 0.5,
    currencies: Sequence[str] = tuple(CURRENCIES),
) -> Dataset:
    """A deterministic dataset: the same arguments always give the same invoices and documents."""
    rng = random.Random(seed)
    gen = _Generator(rng, document_size, supplemental, xml_e_invoice_rate, currencies)
    invoices: list[Invoice] = []
    for account in accounts:
        for year, month in periods:
            for n in range(invoices_per_account_period):
                role = receiver_roles[n % len(receiver_roles)] if receiver_roles else None
                awkward = (
                    AWKWARD_IDS[len(invoices) % len(AWKWARD_IDS)] if awkward_ids and n % 5 == 4 else None
                )
                invoices.append(gen.invoice(account, (year, month), role, awkward))
    return Dataset([replace(inv, access_denied=rng.random() < access_denied_rate) for inv in invoices])


def default_dataset(today: datetime | None = None) -> Dataset:
    """The demo dataset: 3 accounts x the 3 most recent complete billing periods x 72 invoices."""
    now = (today or datetime.now(UTC)).astimezone(UTC)
    periods: list[Period] = []
    year, month = now.year, now.month
    for _ in range(3):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        periods.insert(0, (year, month))
    return generate(seed=2026, periods=periods, invoices_per_account_period=72, document_size=(2048, 6144))


class _Generator:
    def __init__(
        self,
        rng: random.Random,
        document_size: int | tuple[int, int],
        supplemental: tuple[int, int],
        xml_rate: float,
        currencies: Sequence[str],
    ) -> None:
        self.rng = rng
        self.document_size = document_size
        self.supplemental = supplemental
        self.xml_rate = xml_rate
        self.currencies = currencies
        self.ids: set[str] = set()
        self.originals: dict[str, list[str]] = {}

    def _size(self) -> int:
        if isinstance(self.document_size, int):
            return self.document_size
        return self.rng.randint(*self.document_size)

    def _new_id(self, billing_entity: str, entity: str, awkward: str | None) -> str:
        while True:
            if awkward is not None:
                candidate = f"{awkward}-{self.rng.randrange(10**6):06d}"
            elif billing_entity == "AWS_MARKETPLACE":
                candidate = f"MP{self.rng.randrange(10**10):010d}"
            elif "EMEA" in entity:
                candidate = f"EUINGB{self.rng.randrange(10**2):02d}-{self.rng.randrange(10**6):06d}"
            else:
                candidate = str(self.rng.randrange(10**9, 10**10))
            if candidate not in self.ids:
                self.ids.add(candidate)
                return candidate

    def invoice(self, account: str, period: Period, role: str | None, awkward: str | None) -> Invoice:
        rng = self.rng
        billing_entity, entity = rng.choice(ENTITIES)
        invoice_id = self._new_id(billing_entity, entity, awkward)
        year, month = period
        nyear, nmonth = (year + 1, 1) if month == 12 else (year, month + 1)
        issued = datetime(
            nyear, nmonth, rng.randint(1, 10), rng.randint(0, 23), rng.randint(0, 59), tzinfo=UTC
        )
        originals = self.originals.setdefault(account, [])
        kind = rng.choices(("INVOICE", "CREDIT_MEMO", "PAYMENT_RECEIPT"), weights=(80, 10, 10))[0]
        if kind == "CREDIT_MEMO" and not originals:
            kind = "INVOICE"
        bill_type = {
            "INVOICE": rng.choice(("ANNIVERSARY", "ANNIVERSARY", "PURCHASE")),
            "CREDIT_MEMO": "REFUND",
        }
        summary: dict[str, Any] = {
            "AccountId": account,
            "InvoiceId": invoice_id,
            "IssuedDate": issued,
            "DueDate": issued + timedelta(days=30),
            "BillSourceAccounts": [account],
            "BillSourceAccountsTotalCount": 1,
            "Entity": {"InvoicingEntity": entity, "BillingEntity": billing_entity},
            "BillingPeriod": {"Month": month, "Year": year},
            "InvoiceType": kind,
        }
        if role is not None and issued >= RECEIVER_ROLE_DATA_START:
            summary["ReceiverRole"] = role
        summary["BillType"] = bill_type.get(kind, "PURCHASE")
        summary["InvoiceFrequency"] = "RECURRING" if summary["BillType"] == "ANNIVERSARY" else "ONE_TIME"
        if kind == "CREDIT_MEMO":
            summary["OriginalInvoiceId"] = rng.choice(originals)
        if kind == "INVOICE":
            originals.append(invoice_id)
        if rng.random() < 0.2:
            summary["PurchaseOrderNumber"] = f"PO-{rng.randrange(10**6):06d}"
        currency = rng.choice(self.currencies)
        if currency in ("BRL", "INR"):
            summary["CommercialInvoiceId"] = str(rng.randrange(10**9, 10**10))
            summary["EinvoiceDeliveryStatus"] = rng.choice(("DELIVERED", "NOT_DELIVERED"))
            summary["TaxAuthorityStatus"] = rng.choice(("ISSUED", "ISSUED", "CANCELLED"))
        sign = Decimal(-1) if kind == "CREDIT_MEMO" else Decimal(1)
        usd = sign * Decimal(rng.randint(100, 5_000_000)) / 100
        discount, fee = rng.random() < 0.3, rng.random() < 0.3
        summary["BaseCurrencyAmount"] = amounts(usd, "USD", discount, fee)
        summary["PaymentCurrencyAmount"] = amounts(usd, currency, discount, fee)
        summary["TaxCurrencyAmount"] = amounts(usd, currency, discount, fee)
        return Invoice(
            summary, Document(invoice_id, invoice_id, "INVOICE", self._size()), self._supplemental(invoice_id)
        )

    def _supplemental(self, invoice_id: str) -> tuple[Document, ...]:
        count = self.rng.randint(*self.supplemental)
        docs = []
        kinds = self.rng.sample(SUPPLEMENTAL_DOCUMENT_TYPES, min(count, 4)) + [
            SUPPLEMENTAL_DOCUMENT_TYPES[3]
        ] * (count - 4)
        for kind in kinds:
            xml = kind == "TAX_E_INVOICE" and self.rng.random() < self.xml_rate
            media: MediaType = "xml" if xml else "pdf"
            doc_id = f"{self.rng.randrange(16**12):012x}"  # opaque, as the API's ids are
            docs.append(Document(invoice_id, doc_id, kind, self._size(), media))
        return tuple(docs)


def _generate_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(params)
    if "periods" in kwargs:
        kwargs["periods"] = [parse_period(p) for p in kwargs["periods"]]
    for key in ("document_size", "supplemental"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    return kwargs


def month_days(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]
