"""A backfill's listing is the lister's own: the command sends the lister an explicit request and reads
what it enqueued from its response. There is one listing path, and only the stack's roles send to its queues.

* On a stack: `lambda:InvokeFunction` on the stack's lister (its CloudFormation output), synchronously,
  so a refused request (a ReceiverRole query before 2025-06, an account that is not a source) is one
  line, and the response names what was enqueued.
* On a sandbox (AWS_ENDPOINT_URL*, no stack): the real lister handler in this process, as run-local runs
  it, and each continuation from the listing queue after it, as the stack's event source mapping would.

The request carries `report_enqueued`: each response names the invoices its invocation enqueued, with
why (logic.listing_report), as long as they fit in a Lambda response. A listing that continues through
the stack's listing queue runs its later pieces where the command cannot see their responses; then, as
when the names did not fit, the backfill follows the ledger instead (cli.follow).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from invoice_archiver.cli import aws, local
from invoice_archiver.cli.errors import PROBLEMS, CliError, endpoint_hint
from invoice_archiver.cli.progress import Tracker
from invoice_archiver.cli.settle import Listed
from invoice_archiver.cli.target import Target
from invoice_archiver.cli.wording import count
from invoice_archiver.dal import clients

# What the lister raises for a request it will not run (pydantic's ValidationError, PlanningError and
# SourceRefused are ValueErrors): a usage error, not a failure.
REFUSALS = frozenset({"ValidationError", "PlanningError", "SourceRefused", "ValueError"})


@dataclass
class Listing:
    """What the lister reported: the run's totals so far, and the invoices it named."""

    queries: int = 0
    queries_done: int = 0
    listed: int = 0
    unchanged: int = 0
    quarantined: int = 0
    refused: int = 0
    periods: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    failed_sources: dict[str, str] = field(default_factory=dict)
    enqueued: dict[Listed, str] = field(default_factory=dict)  # invoice -> why (logic.changes.Reason)
    complete: bool = True  # every enqueued invoice is named
    continued: bool = False  # the last piece seen handed the rest to the listing queue

    @property
    def followable(self) -> bool:
        """Every enqueued invoice is known by name (else the backfill follows the ledger)."""
        return self.complete and not self.continued

    @property
    def sent(self) -> int:
        return self.listed - self.unchanged

    def add(self, response: dict[str, Any]) -> None:
        """One piece's response (totals are the whole run's so far; `enqueued` is the piece's own)."""
        self.queries = int(response.get("queries", self.queries))
        self.queries_done = int(response.get("queries_done", self.queries_done))
        self.listed = int(response.get("invoices_listed", self.listed))
        self.unchanged = int(response.get("unchanged", self.unchanged))
        self.quarantined = int(response.get("quarantined", self.quarantined))
        self.refused = int(response.get("refused", self.refused))
        self.periods.update(response.get("periods", []))
        self.accounts.update(response.get("accounts", []))
        self.failed_sources.update(response.get("failed_sources", {}))
        for entry in response.get("enqueued", []):
            invoice = Listed(str(entry["account_id"]), str(entry["billing_period"]), str(entry["invoice_id"]))
            self.enqueued[invoice] = str(entry.get("reason", ""))
        # A lister that does not know `report_enqueued` names nothing: follow the ledger then.
        self.complete = self.complete and bool(response.get("enqueued_complete", False))
        self.continued = bool(response.get("continued"))


def list_here(
    event: dict[str, Any], listing_queue_url: str, log: local.FunctionLog, tracker: Tracker
) -> Listing:
    """The lister handler in this process, then every continuation it leaves in the listing queue."""
    from invoice_archiver.local.pipeline import drain_listing, invoke_lister

    listing = Listing()

    def piece(response: dict[str, Any]) -> None:
        listing.add(response)
        tracker.set_total(listing.queries)
        tracker.set_completed(listing.queries_done)
        tracker.note(f"{count(listing.listed, 'invoice')}, {len(listing.enqueued)} to archive")

    with local.logs_to(log):
        try:
            first = invoke_lister(event)
        except ValueError as exc:  # a request the lister refuses before any call
            raise CliError(f"the lister refused the request: {_one_line(exc)}") from None
        piece(first)
        drain_listing(first, listing_queue_url, on_piece=piece)
    return listing


def list_on_stack(where: Target, event: dict[str, Any], tracker: Tracker) -> Listing:
    """One synchronous invocation of the stack's lister; its response."""
    if not where.lister_function:
        raise CliError(
            f"stack {where.stack} has no output ListerFunctionName: a backfill invokes the stack's lister; "
            "deploy this version of the stack"
        )
    client = _lambda_client(where.lister_timeout_seconds)
    try:
        answer = client.invoke(
            FunctionName=where.lister_function,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
    except ReadTimeoutError:
        raise CliError(
            f"the stack's lister {where.lister_function} did not answer within its timeout "
            f"({where.lister_timeout_seconds} s); what it listed is archived by the stack: "
            f"invoice-archiver status --stack {where.stack}",
            PROBLEMS,
        ) from None
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in {"AccessDeniedException", "AccessDenied"}:
            raise CliError(
                f"access denied to lambda:InvokeFunction on {where.lister_function} "
                f"({endpoint_hint('lambda')}): a backfill asks the stack's lister to list and enqueue; "
                "grant the caller lambda:InvokeFunction on it (see docs/deploy.md)"
            ) from None
        raise
    payload: Any = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        raise _function_error(where, payload)
    if not isinstance(payload, dict):
        raise CliError(f"the stack's lister answered {str(payload)[:200]!r}, not a listing", PROBLEMS)
    listing = Listing()
    listing.add(payload)
    tracker.set_total(listing.queries)
    tracker.set_completed(listing.queries_done)
    tracker.note(f"{count(listing.listed, 'invoice')}, {listing.sent} to archive")
    return listing


def _function_error(where: Target, payload: Any) -> CliError:
    error = payload if isinstance(payload, dict) else {}
    kind = str(error.get("errorType", "Error"))
    message = _one_line(error.get("errorMessage", "")) or kind
    if kind in REFUSALS:
        hint = ""
        if "report_enqueued" in message or "rearchive" in message:
            hint = " (the stack's lister is older than this command: deploy this version of the stack)"
        return CliError(f"the stack's lister refused the request: {message}{hint}")
    return CliError(
        f"the stack's lister failed ({kind}: {message}); "
        f"its log group is /aws/lambda/{where.lister_function}",
        PROBLEMS,
    )


def _lambda_client(timeout_seconds: int) -> Any:
    """A Lambda client that waits as long as the lister may run, and never repeats an invocation."""
    config = Config(
        connect_timeout=aws.CONNECT_SECONDS,
        read_timeout=timeout_seconds + 60,
        retries={"total_max_attempts": 1},
    )
    return clients.session().client("lambda", config=config)


def _one_line(value: object) -> str:
    return " ".join(str(value).replace("Value error, ", "").split())
