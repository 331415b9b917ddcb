"""The Invoicing operations the emulator serves: request validation, filtering, pagination, PDF URLs.

Pure logic over a `Dataset`: it takes the decoded JSON request and returns the JSON response body or
raises `ApiError`. The HTTP layer lives in sandbox/emulator.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from invoice_archiver.sandbox import shapes
from invoice_archiver.sandbox.dataset import RECEIVER_ROLE_DATA_START, Dataset, month_days
from invoice_archiver.sandbox.documents import Document
from invoice_archiver.sandbox.invoice import Invoice
from invoice_archiver.sandbox.signing import UrlSigner, path_segment
from invoice_archiver.sandbox.timeline import applied

DEFAULT_MAX_RESULTS = 100
MAX_RECEIVER_ROLE_SPAN = timedelta(days=5 * 366)
NEXT_TOKEN_LIFETIME = timedelta(hours=24)
DEFAULT_CALLER_ACCOUNT = "123456789012"


@dataclass
class ApiError(Exception):
    """An error response: ``code`` becomes ``__type``; ``fields`` are the modelled extra members."""

    code: str
    status: int
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


def validation_error(
    message: str, reason: str = "other", field_list: list[dict[str, str]] | None = None
) -> ApiError:
    extra: dict[str, Any] = {"reason": reason}
    if field_list:
        extra["fieldList"] = field_list
    return ApiError("ValidationException", 400, message, extra)


def check_input(operation_name: str, body: Any) -> None:
    """Validate the request body against the operation's input shape, as the service's framework does."""
    input_shape = shapes.operation(operation_name).input_shape
    assert input_shape is not None
    problems = shapes.validate(input_shape, body)
    if not problems:
        return
    reason = "cannotParse" if any(p.kind == "type" for p in problems) else "fieldValidationFailed"
    details = "; ".join(f"Value at '{p.path}' failed to satisfy constraint: {p.message}" for p in problems)
    raise validation_error(
        f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: {details}",
        reason,
        [{"name": p.path, "message": p.message} for p in problems],
    )


def _epoch(value: datetime) -> int | float:
    stamp = value.timestamp()
    return int(stamp) if stamp == int(stamp) else stamp


def wire_summary(inv: Invoice) -> dict[str, Any]:
    """The summary as JSON 1.0 puts it on the wire: timestamps as epoch seconds."""
    return {k: _epoch(v) if isinstance(v, datetime) else v for k, v in inv.summary.items()}


@dataclass(frozen=True)
class _Query:
    selector: tuple[str, str]
    billing_period: tuple[int, int] | None
    start: datetime | None
    end: datetime | None
    entity: str | None
    role: str | None

    def key(self) -> str:
        return json.dumps(
            [self.selector, self.billing_period, str(self.start), str(self.end), self.entity, self.role]
        )

    def matches(self, inv: Invoice) -> bool:
        kind, value = self.selector
        if (inv.account_id if kind == "ACCOUNT_ID" else inv.invoice_id) != value:
            return False
        if self.billing_period is not None and inv.billing_period != self.billing_period:
            return False
        if self.start is not None and self.end is not None and not self.start <= inv.issued_date < self.end:
            return False
        if self.entity is not None and inv.invoicing_entity != self.entity:
            return False
        return self.role is None or inv.receiver_role == self.role


class InvoicingService:
    def __init__(self, dataset: Dataset, secret: bytes, clock: Callable[[], datetime]) -> None:
        self.dataset = dataset
        self._secret = secret
        self._clock = clock
        # The dataset as of the clock (its timeline applied), rebuilt when another change falls due.
        self._state: tuple[int, Dataset, list[Invoice], dict[str, list[Invoice]]] | None = None
        # The invoices a query matches, per query, for the dataset's current state: paging through a
        # large listing filters the dataset once per query, not once per page.
        self._matching: dict[str, tuple[list[Invoice], list[Invoice]]] = {}

    def current(self) -> tuple[Dataset, list[Invoice], dict[str, list[Invoice]]]:
        """The dataset now, its invoices newest first (then by id), and its invoices by id segment."""
        now = self._clock()
        count = applied(self.dataset.timeline, now)
        state = self._state
        if state is None or state[0] != count:
            dataset = self.dataset.at(now)
            # Deterministic order: newest first, then by invoice id.
            ordered = sorted(dataset.invoices, key=lambda i: (-i.issued_date.timestamp(), i.invoice_id))
            segments: dict[str, list[Invoice]] = {}
            for inv in dataset.invoices:
                segments.setdefault(path_segment(inv.invoice_id), []).append(inv)
            state = (count, dataset, ordered, segments)
            self._state = state
        return state[1], state[2], state[3]

    # --- ListInvoiceSummaries --------------------------------------------------------------------

    def list_invoice_summaries(self, body: dict[str, Any]) -> dict[str, Any]:
        check_input("ListInvoiceSummaries", body)
        query = _parse_query(body)
        offset = self._decode_token(body["NextToken"], query) if "NextToken" in body else 0
        limit = body.get("MaxResults", DEFAULT_MAX_RESULTS)
        matching = self._matches(query)
        page = matching[offset : offset + limit]
        result: dict[str, Any] = {"InvoiceSummaries": [wire_summary(inv) for inv in page]}
        if offset + limit < len(matching):
            result["NextToken"] = self._encode_token(offset + limit, query)
        return result

    def _matches(self, query: _Query) -> list[Invoice]:
        ordered = self.current()[1]
        cached = self._matching.get(query.key())
        if cached is not None and cached[0] is ordered:
            return cached[1]
        matching = [inv for inv in ordered if query.matches(inv)]
        if len(self._matching) >= 64:
            self._matching.clear()
        self._matching[query.key()] = (ordered, matching)
        return matching

    def _encode_token(self, offset: int, query: _Query) -> str:
        payload = json.dumps({"o": offset, "q": _digest(query.key()), "t": int(self._clock().timestamp())})
        raw = payload.encode()
        mac = hmac.new(self._secret, raw, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(raw + mac).decode()

    def _decode_token(self, token: str, query: _Query) -> int:
        invalid = validation_error(
            "Invalid NextToken", "invalidNextToken", [{"name": "NextToken", "message": "invalid"}]
        )
        try:
            blob = base64.urlsafe_b64decode(token.encode())
        except (binascii.Error, ValueError):
            raise invalid from None
        raw, mac = blob[:-16], blob[-16:]
        if len(blob) <= 16 or not hmac.compare_digest(
            mac, hmac.new(self._secret, raw, hashlib.sha256).digest()[:16]
        ):
            raise invalid
        data = json.loads(raw)
        if data["q"] != _digest(query.key()):
            raise invalid
        if self._clock() - datetime.fromtimestamp(data["t"], UTC) > NEXT_TOKEN_LIFETIME:
            raise validation_error("NextToken has expired", "expiredNextToken")
        offset: int = data["o"]
        return offset

    # --- GetInvoicePDF ---------------------------------------------------------------------------

    def find_invoice(self, body: dict[str, Any]) -> Invoice:
        check_input("GetInvoicePDF", body)
        invoice_id = body["InvoiceId"]
        inv = self.current()[0].get(invoice_id)
        if inv is None:
            raise ApiError(
                "ResourceNotFoundException",
                404,
                f"Invoice {invoice_id} not found",
                {"resourceName": _invoice_arn(invoice_id)},
            )
        if inv.access_denied:
            raise ApiError(
                "AccessDeniedException",
                403,
                "User is not authorized to perform: invoicing:GetInvoicePDF on this invoice",
            )
        return inv

    def invoice_pdf(
        self, inv: Invoice, signer: UrlSigner, issue: Callable[[Document], tuple[str, datetime]]
    ) -> dict[str, Any]:
        url, expiry = issue(inv.document)
        pdf: dict[str, Any] = {
            "InvoiceId": inv.invoice_id,
            "DocumentUrl": url,
            "DocumentUrlExpirationDate": _epoch(expiry),
        }
        supplemental = []
        for doc in inv.supplemental:
            doc_url, doc_expiry = issue(doc)
            described = {"DocumentType": doc.document_type, "DocumentId": doc.document_id}
            supplemental.append(
                {
                    **{name: value for name, value in described.items() if name not in doc.omitted},
                    "DocumentUrl": doc_url,
                    "DocumentUrlExpirationDate": _epoch(doc_expiry),
                }
            )
        pdf["SupplementalDocuments"] = supplemental
        return {"InvoicePDF": pdf}

    def document_at(self, path: str) -> Document | None:
        """The document behind a ``/documents/<invoice>/<document>`` path (percent-encoded), if any."""
        parts = path.split("/")
        if len(parts) != 4 or parts[1] != "documents":
            return None
        for inv in self.current()[2].get(parts[2], ()):
            for doc in inv.documents:
                if path_segment(doc.document_id) == parts[3]:
                    return doc
        return None


def document_path(doc: Document) -> str:
    return f"/documents/{path_segment(doc.invoice_id)}/{path_segment(doc.document_id)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _invoice_arn(invoice_id: str) -> str:
    """An ARN that satisfies the InvoiceUnitArnString pattern, whatever characters the id holds."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_/:") else "_" for c in invoice_id) or "_"
    return f"arn:aws:invoicing::{DEFAULT_CALLER_ACCOUNT}:invoice/{safe}"


def _parse_query(body: dict[str, Any]) -> _Query:
    selector = body["Selector"]
    flt = body.get("Filter") or {}
    period = flt.get("BillingPeriod")
    interval = flt.get("TimeInterval")
    role = flt.get("ReceiverRole")
    if selector["ResourceType"] == "ACCOUNT_ID":
        if not period and not interval:
            raise validation_error(
                "Listing by ACCOUNT_ID requires a BillingPeriod or a TimeInterval filter",
                "fieldValidationFailed",
                [{"name": "Filter", "message": "BillingPeriod or TimeInterval is required for ACCOUNT_ID"}],
            )
        if not selector["Value"].isdigit() or len(selector["Value"]) != 12:
            raise validation_error(
                "Selector.Value must be a 12-digit account id",
                "fieldValidationFailed",
                [{"name": "Selector.Value", "message": "must be a 12-digit account id"}],
            )
    if period and interval:
        raise validation_error(
            "BillingPeriod and TimeInterval cannot be used together",
            "mutualExclusionError",
            [{"name": "Filter", "message": "Specify either BillingPeriod or TimeInterval, not both"}],
        )
    start = end = None
    if interval:
        start = datetime.fromtimestamp(interval["StartDate"], UTC)
        end = datetime.fromtimestamp(interval["EndDate"], UTC)
        _check_interval(start, end, role)
    billing = (period["Year"], period["Month"]) if period else None
    if role and billing and billing < (RECEIVER_ROLE_DATA_START.year, RECEIVER_ROLE_DATA_START.month):
        raise _role_too_early("Filter.BillingPeriod")
    return _Query(
        (selector["ResourceType"], selector["Value"]), billing, start, end, flt.get("InvoicingEntity"), role
    )


def _check_interval(start: datetime, end: datetime, role: str | None) -> None:
    def bad(message: str) -> ApiError:
        return validation_error(
            message, "fieldValidationFailed", [{"name": "Filter.TimeInterval", "message": message}]
        )

    if start >= end:
        raise bad("StartDate must be before EndDate")
    if role:
        if start < RECEIVER_ROLE_DATA_START:
            raise _role_too_early("Filter.TimeInterval.StartDate")
        if end - start > MAX_RECEIVER_ROLE_SPAN or end > start.replace(year=start.year + 5):
            raise bad("TimePeriod cannot last more than 5 years when ReceiverRole is specified")
    elif end - start > timedelta(days=month_days(start.year, start.month)):
        raise bad("TimePeriod cannot last more than a month")


def _role_too_early(name: str) -> ApiError:
    message = "Data for ReceiverRole is available starting 2025-06-01"
    return validation_error(message, "fieldValidationFailed", [{"name": name, "message": message}])
