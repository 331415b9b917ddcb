"""invoice_archiver.logic.listing: boto3 summaries made plain JSON, turned into messages, and fanned out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from dateutil.tz import tzutc

from invoice_archiver.dal import wire
from invoice_archiver.dal.ledger.records import InvoiceRecord
from invoice_archiver.dal.sources import SourceUnavailable
from invoice_archiver.logic.changes import fingerprint
from invoice_archiver.logic.invoice_messages import jsonable, to_message
from invoice_archiver.logic.listing import run_listing
from invoice_archiver.logic.planning import SummaryQuery
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.observability import metrics

from .factories import ACCOUNT, QUEUE_URL, SummaryFactory, ledger_record


def test_datetimes_become_iso_8601_with_their_offset() -> None:
    # Given datetimes as botocore returns them (tzutc) and with another offset
    value = {
        "IssuedDate": datetime(2025, 7, 2, 9, 30, tzinfo=tzutc()),
        "DueDate": datetime(2025, 8, 1, 0, 0, 5, tzinfo=UTC),
        "Local": datetime(2025, 7, 2, 11, 30, tzinfo=timezone(timedelta(hours=2))),
    }

    # When made JSON-safe
    clean = jsonable(value)

    # Then ISO 8601 strings with an explicit offset, naming the same instants
    assert clean == {
        "IssuedDate": "2025-07-02T09:30:00+00:00",
        "DueDate": "2025-08-01T00:00:05+00:00",
        "Local": "2025-07-02T11:30:00+02:00",
    }
    for key, text in clean.items():
        assert datetime.fromisoformat(text) == value[key]


def test_dates_and_decimals_become_strings_without_losing_precision() -> None:
    clean = jsonable(
        {"Day": date(2025, 7, 2), "Amounts": [Decimal("0.10"), Decimal("1E+2"), Decimal("-12.345")]}
    )
    assert clean == {"Day": "2025-07-02", "Amounts": ["0.10", "1E+2", "-12.345"]}


def test_response_metadata_is_dropped_at_every_level() -> None:
    value = {
        "ResponseMetadata": {"RequestId": "r1"},
        "InvoiceSummaries": [{"InvoiceId": "X", "ResponseMetadata": {"RequestId": "r2"}}],
    }
    assert jsonable(value) == {"InvoiceSummaries": [{"InvoiceId": "X"}]}


def test_tuples_become_lists_and_plain_values_are_kept() -> None:
    assert jsonable({"a": (1, "b", None, True, 1.5)}) == {"a": [1, "b", None, True, 1.5]}


def test_a_boto3_summary_becomes_plain_json(make_summary: SummaryFactory) -> None:
    # Given a summary with datetimes, Decimals and nesting
    summary = make_summary()

    # When made JSON-safe, Then json.dumps needs no help and the content is intact
    clean = jsonable(summary)
    assert json.loads(json.dumps(clean)) == clean
    assert clean["BaseCurrencyAmount"]["TotalAmount"] == "123.45"
    assert clean["IssuedDate"] == "2025-07-02T09:30:00+00:00"
    assert clean["BillingPeriod"] == {"Month": 6, "Year": 2025}
    # and the input is left as it was
    assert isinstance(summary["IssuedDate"], datetime)


def test_to_message(make_summary: SummaryFactory) -> None:
    # Given a boto3 summary
    summary = make_summary()

    # When turned into a message
    message = to_message(summary)

    # Then it is a pointer: the identity is lifted out, nothing of the summary travels, and it serialises
    assert message.account_id == ACCOUNT
    assert message.invoice_id == "EUINGB25-123456"
    assert message.billing_period == "2025-06"
    assert message.summary is None
    assert "BaseCurrencyAmount" not in message.model_dump_json()
    assert InvoiceMessage.model_validate_json(message.model_dump_json()) == message


@pytest.mark.parametrize(
    "overrides",
    [
        {"PurchaseOrderNumber": "https://bucket.s3.amazonaws.com/po.pdf?X-Amz-Signature=SECRETSIG"},
        {"Entity": {"InvoicingEntity": "see http://example.test/?X-Amz-Credential=SECRETSIG"}},
        {"BillSourceAccounts": [ACCOUNT, "HTTPS://EXAMPLE.TEST/?Expires=1&Signature=SECRETSIG"]},
    ],
)
def test_a_summary_holding_a_presigned_url_is_refused(
    make_summary: SummaryFactory, overrides: dict[str, Any]
) -> None:
    # Given a summary with a pre-signed URL somewhere inside
    summary = make_summary(**overrides)

    # When turned into a message, Then refused, naming the invoice but not repeating the URL
    with pytest.raises(
        ValueError, match="EUINGB25-123456 summary holds a pre-signed URL; refusing to enqueue it"
    ) as caught:
        to_message(summary)
    assert "SECRETSIG" not in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"PurchaseOrderNumber": "see https://procure.example.com/po/4711"},
        {"Entity": {"InvoicingEntity": "Amazon Web Services EMEA SARL, https://aws.amazon.com"}},
    ],
)
def test_customer_text_holding_a_plain_url_is_enqueued(
    make_summary: SummaryFactory, overrides: dict[str, Any]
) -> None:
    # Given a purchase-order note or an entity name holding an ordinary URL, Then it is data: enqueued
    assert to_message(make_summary(**overrides)).invoice_id == "EUINGB25-123456"


# --- run_listing with fake clients ----------------------------------------------------------------


class FakeInvoicing:
    """Answers each query with pages of summaries, keyed by the query's billing period."""

    def __init__(self, pages_by_period: dict[str, list[list[dict[str, Any]]]]) -> None:
        self.pages_by_period = pages_by_period
        self.requests: list[dict[str, Any]] = []
        # dal/wire.py registers a hook that keeps each raw response body; a fake has none to keep.
        self.meta = SimpleNamespace(events=SimpleNamespace(register=lambda *args, **kwargs: None))

    def list_invoice_summaries(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(kwargs)
        # No raw body: dal/wire.py must not read a body an earlier test's real client left on this thread.
        wire._last_body.value = b""
        pages = self.pages_by_period.get(str(BillingPeriod.from_api(kwargs["Filter"]["BillingPeriod"])), [])
        index = int(kwargs.get("NextToken", 0))
        page: dict[str, Any] = {"InvoiceSummaries": pages[index] if index < len(pages) else []}
        if index + 1 < len(pages):
            page["NextToken"] = str(index + 1)
        return page


class RecordingSqs:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        assert QueueUrl == QUEUE_URL
        self.batches.append([e["MessageBody"] for e in Entries])
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def test_run_listing_sends_one_message_per_invoice_in_batches_of_ten(make_summary: SummaryFactory) -> None:
    # Given two periods: June with 23 invoices over three pages, July with none
    june = [make_summary(InvoiceId=f"INV-{n:02d}") for n in range(23)]
    invoicing = FakeInvoicing({"2025-06": [june[:10], june[10:20], june[20:]]})
    sqs = RecordingSqs()
    queries = [
        SummaryQuery(account_id=ACCOUNT, billing_period=BillingPeriod(2025, 6)),
        SummaryQuery(account_id=ACCOUNT, billing_period=BillingPeriod(2025, 7)),
    ]

    # When listed
    try:
        result = run_listing(queries, invoicing_for=lambda _: invoicing, sqs=sqs, queue_url=QUEUE_URL)  # type: ignore[arg-type, return-value]
    finally:
        metrics.clear_metrics()

    # Then every invoice is one message, sent ten at a time, and the result counts them
    assert [len(batch) for batch in sqs.batches] == [10, 10, 3]
    messages = [InvoiceMessage.model_validate_json(body) for batch in sqs.batches for body in batch]
    assert [m.invoice_id for m in messages] == [f"INV-{n:02d}" for n in range(23)]
    assert result.as_dict() == {
        "queries": 2,
        "invoices_listed": 23,
        "messages_sent": 23,
        "quarantined": 0,
        "refused": 0,
        "unchanged": 0,
        "reasons": {"new": 23},
        "ledger_queries": 0,
        "ledger_read_units": 0.0,
        "ledger_seconds": 0.0,
        "periods": ["2025-06", "2025-07"],
        "accounts": [ACCOUNT],
    }
    # and the API saw the queries' own parameters with a page size
    assert invoicing.requests[0]["Selector"] == {"ResourceType": "ACCOUNT_ID", "Value": ACCOUNT}
    assert invoicing.requests[0]["MaxResults"] == 100


class FakeLedger:
    """LedgerView's interface over a dict: the items by invoice id, one 'query' per period asked."""

    def __init__(self, items: dict[str, dict[str, Any]]) -> None:
        self.items = items
        self.periods: set[tuple[str, str]] = set()

    def record(self, message: InvoiceMessage) -> InvoiceRecord | None:
        self.periods.add((message.account_id, message.billing_period))
        return ledger_record(self.items.get(message.invoice_id))

    @property
    def queries(self) -> int:
        return len(self.periods)

    @property
    def read_units(self) -> float:
        return 0.5 * len(self.periods)

    seconds = 0.0


def test_run_listing_enqueues_only_what_is_new_changed_not_archived_or_due(
    make_summary: SummaryFactory,
) -> None:
    # Given five listed invoices and a ledger that holds four of them
    summaries = [make_summary(InvoiceId=f"INV-{n}") for n in range(5)]
    prints = {s["InvoiceId"]: fingerprint(jsonable(s)) for s in summaries}
    now = datetime(2026, 11, 6, 6, tzinfo=UTC)
    ledger = FakeLedger(
        {
            "INV-0": {"status": "ARCHIVED", "summary_fingerprint": prints["INV-0"]},
            "INV-1": {"status": "ARCHIVED", "summary_fingerprint": "0" * 64},
            "INV-2": {"status": "FAILED", "summary_fingerprint": prints["INV-2"]},
            "INV-3": {
                "status": "ARCHIVED",
                "summary_fingerprint": prints["INV-3"],
                "next_check_at": (now - timedelta(hours=1)).isoformat(),
            },
        }
    )
    sqs = RecordingSqs()
    query = SummaryQuery(account_id=ACCOUNT, billing_period=BillingPeriod(2025, 6))

    # When listed against the ledger
    try:
        result = run_listing(
            [query],
            invoicing_for=lambda _: FakeInvoicing({"2025-06": [summaries]}),  # type: ignore[arg-type, return-value]
            sqs=sqs,  # type: ignore[arg-type]
            queue_url=QUEUE_URL,
            ledger=ledger,  # type: ignore[arg-type]
            now=now,
        )
    finally:
        metrics.clear_metrics()

    # Then the unchanged archived invoice is not sent; the others are, each with its reason and the run's time
    messages = [InvoiceMessage.model_validate_json(body) for batch in sqs.batches for body in batch]
    assert {m.invoice_id: m.reason for m in messages} == {
        "INV-1": "changed",
        "INV-2": "not-archived",
        "INV-3": "due",
        "INV-4": "new",
    }
    assert {m.listed_at for m in messages} == {now}
    assert (result.unchanged, result.ledger_queries, result.messages_sent) == (1, 1, 4)
    assert result.listed_per_period == {f"{ACCOUNT}#2025-06": 5}


# --- stopping for time, resuming, and sources that cannot be read --------------------------------------


class Clock:
    """Seconds left of an invocation: one second fewer each time it is asked."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        self.seconds -= 1
        return float(self.seconds)


def three_pages(make_summary: SummaryFactory, prefix: str) -> list[list[dict[str, Any]]]:
    return [[make_summary(InvoiceId=f"{prefix}-{p}{n}") for n in range(2)] for p in range(3)]


def test_a_listing_stops_before_a_page_when_time_runs_short_and_resumes_from_its_token(
    make_summary: SummaryFactory,
) -> None:
    # Given one query of three pages, and time for two pages before the reserve
    invoicing = FakeInvoicing({"2025-06": three_pages(make_summary, "A")})
    query = [SummaryQuery(account_id=ACCOUNT, billing_period=BillingPeriod(2025, 6))]
    sqs = RecordingSqs()
    try:
        # When listed with a 1 s reserve and 2 s left (asked after each page: 1 left, then 0)
        first = run_listing(
            query,
            invoicing_for=lambda _: invoicing,  # type: ignore[arg-type, return-value]
            sqs=sqs,  # type: ignore[arg-type]
            queue_url=QUEUE_URL,
            time_left=Clock(2),
            reserve_seconds=1,
        )
        # Then it stopped before the third page, having sent the first two, and says where to resume
        assert first.resume_at == (0, "2")
        assert first.queries_done == 0
        assert [m["InvoiceId"] for m in _sent(sqs)] == ["A-00", "A-01", "A-10", "A-11"]

        # When resumed from there
        rest = run_listing(
            query,
            invoicing_for=lambda _: invoicing,  # type: ignore[arg-type, return-value]
            sqs=sqs,  # type: ignore[arg-type]
            queue_url=QUEUE_URL,
            start=first.resume_at,
        )
    finally:
        metrics.clear_metrics()
    # Then the API is asked for the third page only, and the listing is done
    assert invoicing.requests[-1]["NextToken"] == "2"
    assert len(invoicing.requests) == 3
    assert (rest.resume_at, rest.queries_done) == (None, 1)
    assert [m["InvoiceId"] for m in _sent(sqs)][4:] == ["A-20", "A-21"]


def test_a_listing_that_runs_short_between_queries_resumes_at_the_next_query(
    make_summary: SummaryFactory,
) -> None:
    invoicing = FakeInvoicing({"2025-06": [[make_summary(InvoiceId="J")]], "2025-07": [[make_summary()]]})
    queries = [
        SummaryQuery(account_id=ACCOUNT, billing_period=BillingPeriod(2025, 6)),
        SummaryQuery(account_id=ACCOUNT, billing_period=BillingPeriod(2025, 7)),
    ]
    try:
        result = run_listing(
            queries,
            invoicing_for=lambda _: invoicing,  # type: ignore[arg-type, return-value]
            sqs=RecordingSqs(),  # type: ignore[arg-type]
            queue_url=QUEUE_URL,
            time_left=Clock(1),
            reserve_seconds=1,
        )
    finally:
        metrics.clear_metrics()
    assert (result.resume_at, result.queries_done, result.messages_sent) == ((1, None), 1, 1)


def test_a_source_that_cannot_be_read_fails_alone_and_its_other_queries_are_skipped(
    make_summary: SummaryFactory,
) -> None:
    # Given two accounts: one through a role STS refuses, one with the function's own credentials
    broken = "arn:aws:iam::222222222222:role/reader"
    own = FakeInvoicing({"2025-06": [[make_summary(InvoiceId="OWN")]]})
    asked: list[str | None] = []

    def invoicing_for(role_arn: str | None) -> Any:
        asked.append(role_arn)
        if role_arn == broken:
            raise SourceUnavailable(broken, "AccessDenied: not trusted", "AccessDenied")
        return own

    queries = [
        SummaryQuery(account_id="222222222222", billing_period=BillingPeriod(2025, m), role_arn=broken)
        for m in (6, 7)
    ] + [SummaryQuery(account_id=ACCOUNT, billing_period=BillingPeriod(2025, 6))]
    sqs = RecordingSqs()
    try:
        result = run_listing(queries, invoicing_for=invoicing_for, sqs=sqs, queue_url=QUEUE_URL)  # type: ignore[arg-type]
    finally:
        metrics.clear_metrics()

    # Then the broken source is recorded once with its reason, asked for once, and the other is listed
    assert result.failed_sources == {
        "222222222222": "cannot assume " + broken + ": AccessDenied: not trusted"
    }
    assert asked == [broken, None]
    assert [m["InvoiceId"] for m in _sent(sqs)] == ["OWN"]
    assert result.queries_done == 3


def _sent(sqs: RecordingSqs) -> list[dict[str, Any]]:
    """The invoices the messages point to (a message carries identifiers only)."""
    bodies = [json.loads(body) for batch in sqs.batches for body in batch]
    assert all("summary" not in body for body in bodies)
    return [{"AccountId": body["account_id"], "InvoiceId": body["invoice_id"]} for body in bodies]
