"""Who is calling the emulator, and what that caller may see: the Invoicing API's identity rules.

Off by default (`Identity()`): every caller sees every invoice, as the emulator always did, so the base
test credentials keep working. `Identity(enforce=True, ...)` applies the rules a payer lives by:

* the caller's account comes from the access key in its SigV4 `Authorization` header: a key listed in
  `accounts_by_key` maps to that account (or `ALL_ACCOUNTS`); any other key is looked up with moto's
  STS `GetCallerIdentity` (moto does not verify signatures, and knows the keys its `AssumeRole` issued),
  and the answer is cached per key;
* credentials may list and fetch only their own account's invoices, and a management account also its
  invoice units' receivers (`invoice_units`); anything else is `AccessDeniedException` (HTTP 403, the
  JSON 1.0 error body the service sends);
* `ListInvoiceUnits` returns the units the caller's account manages (every unit when not enforced),
  validated against botocore's input shape and filtered by `Filters`.

`Identity.payers(...)` is the usual set-up: enforced, the base test credentials act as an archive account
that pays nothing, and each payer is read through a role named `role_name` in it. `source_role_arns`
gives the matching `SOURCE_ROLE_ARNS` entries (moto's STS assumes any role ARN, so no IAM role is needed).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import boto3
from botocore.config import Config

from invoice_archiver.sandbox.invoice import Invoice
from invoice_archiver.sandbox.service import ApiError, check_input

ALL_ACCOUNTS: Final = "*"
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/")
_UNIT_ARN = "arn:aws:invoicing::{account}:invoice-unit/{unit_id}"
ARCHIVE_ACCOUNT: Final = "999999999999"  # what the base credentials act as in `Identity.payers`: no payer
BASE_ACCESS_KEY: Final = "testing"  # the sandbox's base credentials (runner.DEFAULTS)
ROLE_NAME: Final = "invoice-archiver-reader"


@dataclass(frozen=True)
class InvoiceUnit:
    """An invoice unit of a management account: invoices of `linked_accounts` go to `receiver`."""

    management_account: str
    unit_id: str
    name: str
    receiver: str
    linked_accounts: tuple[str, ...] = ()
    description: str = ""
    last_modified: datetime = datetime(2025, 6, 1, tzinfo=UTC)

    @property
    def arn(self) -> str:
        return _UNIT_ARN.format(account=self.management_account, unit_id=self.unit_id)

    def to_wire(self) -> dict[str, Any]:
        return {
            "InvoiceUnitArn": self.arn,
            "InvoiceReceiver": self.receiver,
            "Name": self.name,
            "Description": self.description,
            "TaxInheritanceDisabled": False,
            "Rule": {"LinkedAccounts": list(self.linked_accounts or (self.receiver,))},
            "LastModified": self.last_modified.timestamp(),
        }


@dataclass(frozen=True)
class Caller:
    """The account a request acts as (`ALL_ACCOUNTS`: no restriction) and its ARN for messages."""

    account: str
    arn: str


UNRESTRICTED: Final = Caller(ALL_ACCOUNTS, "")


@dataclass
class Identity:
    """The emulator's identity rules (see the module docstring). `sts_endpoint` defaults, in a Sandbox,
    to its moto server."""

    enforce: bool = False
    accounts_by_key: dict[str, str] = field(default_factory=dict)
    invoice_units: tuple[InvoiceUnit, ...] = ()
    sts_endpoint: str | None = None
    region: str = "us-east-1"
    role_name: str = ROLE_NAME  # the read-only role in each payer (`role_arn`, `source_role_arns`)
    _cache: dict[str, Caller] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def payers(
        cls,
        invoice_units: Iterable[InvoiceUnit] = (),
        *,
        archive_account: str = ARCHIVE_ACCOUNT,
        role_name: str = ROLE_NAME,
        enforce: bool = True,
    ) -> Identity:
        """Enforced rules where the base credentials (`BASE_ACCESS_KEY`) are `archive_account`, which
        reads no invoice: every payer must be read through its role."""
        return cls(
            enforce=enforce,
            accounts_by_key={BASE_ACCESS_KEY: archive_account},
            invoice_units=tuple(invoice_units),
            role_name=role_name,
        )

    # Payer roles ----------------------------------------------------------------------------------

    def role_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role/{self.role_name}"

    def source_role_arns(self, accounts: Iterable[str], *, discover: bool = False) -> tuple[str, ...]:
        """`SOURCE_ROLE_ARNS` entries that read every one of `accounts`: a payer through its own role, an
        invoice unit's receiver through its management account's role (`<receiver>=<role-arn>`). With
        `discover` (DISCOVER_INVOICE_UNITS=true) receivers are left out: the lister finds them."""
        managed = {u.receiver: u.management_account for u in self.invoice_units}
        entries: list[str] = []
        for account in sorted({*accounts, *managed.values()}):
            if account not in managed:
                entries.append(self.role_arn(account))
            elif not discover:
                entries.append(f"{account}={self.role_arn(managed[account])}")
        return tuple(entries)

    # Who ------------------------------------------------------------------------------------------

    def caller(self, authorization: str | None) -> Caller:
        """The caller of a request whose Authorization header has already been checked as SigV4."""
        if not self.enforce:
            return UNRESTRICTED
        match = _CREDENTIAL.search(authorization or "")
        key = match.group(1) if match else ""
        with self._lock:
            known = self._cache.get(key)
        if known is not None:
            return known
        if key in self.accounts_by_key:
            account = self.accounts_by_key[key]
            found = Caller(account, f"arn:aws:iam::{account}:user/{key}")
        else:
            found = self._ask_sts(key)
        with self._lock:
            self._cache[key] = found
        return found

    def _ask_sts(self, key: str) -> Caller:
        if not self.sts_endpoint:
            raise ApiError("UnrecognizedClientException", 403, "The security token included is invalid.")
        sts = boto3.client(
            "sts",
            region_name=self.region,
            endpoint_url=self.sts_endpoint,
            aws_access_key_id=key,
            aws_secret_access_key="unverified",  # noqa: S106 - moto does not verify signatures
            config=Config(retries={"mode": "standard", "max_attempts": 2}),
        )
        identity = sts.get_caller_identity()
        return Caller(identity["Account"], identity["Arn"])

    # What it may see ------------------------------------------------------------------------------

    def readable(self, caller: Caller, account: str) -> bool:
        """May `caller` read `account`'s invoices: its own, or a receiver of one of its invoice units."""
        if caller.account in (ALL_ACCOUNTS, account):
            return True
        return any(
            u.management_account == caller.account and u.receiver == account for u in self.invoice_units
        )

    def check_listing(
        self, caller: Caller, body: dict[str, Any], find: Callable[[str], Invoice | None]
    ) -> None:
        """ListInvoiceSummaries: an ACCOUNT_ID the caller may read, or an INVOICE_ID of such an account."""
        if caller.account == ALL_ACCOUNTS:
            return
        check_input("ListInvoiceSummaries", body)
        selector = body["Selector"]
        if selector["ResourceType"] == "ACCOUNT_ID":
            account = selector["Value"]
        else:
            invoice = find(selector["Value"])
            if invoice is None:
                return  # an unknown id lists nothing, whoever asks
            account = invoice.account_id
        if not self.readable(caller, account):
            raise denied(caller, "ListInvoiceSummaries")

    def check_invoice(self, caller: Caller, invoice: Invoice) -> None:
        """GetInvoicePDF: only an invoice of an account the caller may read."""
        if not self.readable(caller, invoice.account_id):
            raise denied(caller, "GetInvoicePDF")

    # ListInvoiceUnits -----------------------------------------------------------------------------

    def list_invoice_units(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        check_input("ListInvoiceUnits", body)
        filters = body.get("Filters") or {}
        units = [
            u
            for u in self.invoice_units
            if caller.account in (ALL_ACCOUNTS, u.management_account)
            and _wanted(filters.get("Names"), [u.name])
            and _wanted(filters.get("InvoiceReceivers"), [u.receiver])
            and _wanted(filters.get("Accounts"), list(u.linked_accounts or (u.receiver,)))
        ]
        offset = int(body["NextToken"]) if str(body.get("NextToken", "")).isdigit() else 0
        limit = int(body.get("MaxResults") or 500)
        result: dict[str, Any] = {"InvoiceUnits": [u.to_wire() for u in units[offset : offset + limit]]}
        if offset + limit < len(units):
            result["NextToken"] = str(offset + limit)
        return result


def denied(caller: Caller, operation: str) -> ApiError:
    return ApiError(
        "AccessDeniedException",
        403,
        f"User: {caller.arn} is not authorized to perform: invoicing:{operation} because no "
        "identity-based policy allows the invoicing:" + operation + " action",
    )


def _wanted(wanted: Iterable[str] | None, values: list[str]) -> bool:
    return wanted is None or bool(set(wanted) & set(values))
