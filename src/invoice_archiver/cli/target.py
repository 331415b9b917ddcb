"""Which archive a command works on: a deployed stack (`--stack NAME`) or the environment.

With `--stack`, the bucket, ledger and queues come from the stack's CloudFormation outputs, and the
accounts, sources, roles and key prefix from its functions' own configuration (so a backfill lists exactly
what the schedule lists). Without it, from the variables the functions and `run-local` read
(ARCHIVE_BUCKET, LEDGER_TABLE, ACCOUNT_IDS, SOURCE_ROLE_ARNS, ...), defaulting to the names `run-local`
creates on a sandbox.

The archive's accounts (`archive_accounts`) are those of ACCOUNT_IDS and of SOURCE_ROLE_ARNS; with
DISCOVER_INVOICE_UNITS=true also every account the ledger holds, since the receivers the lister discovers
are not configured anywhere.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from invoice_archiver.cli import deployed
from invoice_archiver.cli.arguments import stack_name
from invoice_archiver.cli.errors import CliError, config_problem, endpoint_hint, named_resources
from invoice_archiver.config import ConfigError, Settings, load_settings
from invoice_archiver.constants import LEDGER_PARTITION_KEY
from invoice_archiver.dal import clients
from invoice_archiver.infra.constants import OutputKey
from invoice_archiver.models.source import ACCOUNT_ID, Source

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# What run-local creates when nothing is configured; every command falls back to the same names.
LOCAL_DEFAULTS = {
    "ARCHIVE_BUCKET": "invoice-archive-local",
    "LEDGER_TABLE": "invoice-archiver-ledger-local",
    "ALLOW_LOOPBACK_DOCUMENT_URLS": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "InvoiceArchiver",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
LOCAL_QUEUE_NAME = "invoice-archiver-invoices-local"
LOCAL_DLQ_NAME = f"{LOCAL_QUEUE_NAME}-dlq"


@dataclass(frozen=True)
class Target:
    """The functions' settings as this command sees them, and where they came from.

    `settings` is one `Settings`: the bucket, ledger and queues filled in from the stack's outputs (or
    run-local's names), the rest from the stack's functions (or the environment). The properties below
    are the names the commands speak; there is no second copy of any setting.
    """

    settings: Settings
    stack: str | None = None
    lister_function: str = ""  # the stack's lister (its output); "" without a stack
    lister_timeout_seconds: int = 900  # the lister's timeout, when its configuration could be read
    # Where the accounts, roles and sources come from, in words (status says it), and what could not be read.
    configured_by: str = "the environment"
    unreadable: str = ""

    @property
    def bucket(self) -> str:
        return self.settings.archive_bucket

    @property
    def prefix(self) -> str:
        return self.settings.archive_prefix

    @property
    def table(self) -> str:
        return self.settings.ledger_table

    @property
    def queue_url(self) -> str:
        return self.settings.invoice_queue_url

    @property
    def dead_letter_queue_url(self) -> str:
        return self.settings.dead_letter_queue_url

    @property
    def listing_queue_url(self) -> str:
        """Where a listing continues; "" when unknown."""
        return self.settings.listing_queue_url

    @property
    def accounts(self) -> tuple[str, ...]:
        """ACCOUNT_IDS: read with the caller's own credentials."""
        return self.settings.account_ids

    @property
    def sources(self) -> tuple[Source, ...]:
        """SOURCE_ROLE_ARNS: each account read through its role."""
        return self.settings.source_role_arns

    @property
    def roles(self) -> tuple[str, ...]:
        return self.settings.receiver_roles

    @property
    def external_id(self) -> str:
        return self.settings.source_external_id

    @property
    def discover_invoice_units(self) -> bool:
        """DISCOVER_INVOICE_UNITS: receivers found by the lister."""
        return self.settings.discover_invoice_units

    @property
    def invoicing_region(self) -> str:
        return self.settings.invoicing_region

    @property
    def invoicing_max_attempts(self) -> int:
        return self.settings.invoicing_max_attempts

    @property
    def configured_accounts(self) -> tuple[str, ...]:
        """ACCOUNT_IDS, then the accounts of SOURCE_ROLE_ARNS."""
        return tuple(dict.fromkeys((*self.accounts, *(s.account_id for s in self.sources))))

    def describe(self) -> str:
        where = f"stack {self.stack}" if self.stack else endpoint_hint()
        return f"{where}: bucket {self.bucket}, ledger {self.table}"

    def configured_names(self) -> str:
        """Which settings name the archive's accounts, e.g. "ACCOUNT_IDS and SOURCE_ROLE_ARNS"."""
        names = [
            name
            for name, set_ in (("ACCOUNT_IDS", self.accounts), ("SOURCE_ROLE_ARNS", self.sources))
            if set_
        ]
        return " and ".join(names)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        type=stack_name,
        metavar="NAME",
        help="a deployed stack: read the bucket, ledger and queues from its outputs "
        "(default: ARCHIVE_BUCKET, LEDGER_TABLE, ... from the environment, else run-local's names)",
    )


def resolve(stack: str | None, *, queues: bool = True) -> Target:
    """The target named by `--stack`, else by the environment; a bad value is a CliError.

    `queues=False`: the command reads only the bucket and the ledger; run-local's queues are not looked up.
    """
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise CliError(config_problem(str(exc))) from None
    if stack:
        return _from_stack(stack, settings)
    return Target(
        settings.model_copy(
            update={
                "archive_bucket": settings.archive_bucket or LOCAL_DEFAULTS["ARCHIVE_BUCKET"],
                "ledger_table": settings.ledger_table or LOCAL_DEFAULTS["LEDGER_TABLE"],
                "invoice_queue_url": settings.invoice_queue_url or _local_queue(LOCAL_QUEUE_NAME, queues),
                "dead_letter_queue_url": settings.dead_letter_queue_url
                or _local_queue(LOCAL_DLQ_NAME, queues),
                "listing_queue_url": settings.listing_queue_url
                or _local_queue(f"{LOCAL_QUEUE_NAME}-listing", queues),
            }
        )
    )


def archive_accounts(target: Target, table: str | None = None) -> list[str]:
    """The configured accounts (ACCOUNT_IDS, SOURCE_ROLE_ARNS); with DISCOVER_INVOICE_UNITS also every
    account in the ledger `table` (default: the target's)."""
    accounts = list(target.configured_accounts)
    if target.discover_invoice_units:
        accounts += ledger_accounts(table or target.table)
    return list(dict.fromkeys(accounts))


def accounts_or_caller(target: Target, explicit: list[str] | None, table: str | None = None) -> list[str]:
    """--account values, else the archive's accounts, else the caller's own (as the lister defaults)."""
    return choose_accounts(target, explicit, table)[0]


def choose_accounts(
    target: Target, explicit: list[str] | None, table: str | None = None
) -> tuple[list[str], str]:
    """The accounts a command reads, and why those: --account, the configuration, or the caller's own."""
    if explicit:
        return list(dict.fromkeys(explicit)), "--account"
    accounts = archive_accounts(target, table)
    where = target.configured_names()
    why = f"{where} in {target.configured_by}" if where else ""
    if target.discover_invoice_units:
        why += ("; " if why else "") + "and every account in the ledger (DISCOVER_INVOICE_UNITS)"
    if accounts:
        return accounts, why + (f"; {target.unreadable}" if target.unreadable else "")
    caller = str(clients.sts().get_caller_identity()["Account"])
    why = f"your own account: no ACCOUNT_IDS or SOURCE_ROLE_ARNS in {target.configured_by}"
    return [caller], why + (f"; {target.unreadable}" if target.unreadable else "")


def ledger_accounts(table: str) -> list[str]:
    """Every account the ledger holds an item of (an invoice, or a source's record).

    A Scan of the whole table, projecting the partition key: DynamoDB has no "distinct partition keys"
    call, and with DISCOVER_INVOICE_UNITS the receivers exist nowhere else. It is acceptable for status,
    report and verify, which an operator runs now and then; note that a Scan is billed on the items' full
    size (a projection saves bandwidth, not read units), about 1 RCU per 8 KB of ledger.
    """
    found: set[str] = set()
    paginator = clients.dynamodb().get_paginator("scan")
    with named_resources(table=table):
        for page in paginator.paginate(
            TableName=table,
            ProjectionExpression="#pk",
            ExpressionAttributeNames={"#pk": LEDGER_PARTITION_KEY},
        ):
            for item in page.get("Items", []):
                value = item.get(LEDGER_PARTITION_KEY, {}).get("S", "")
                if ACCOUNT_ID.match(value):
                    found.add(value)
    return sorted(found)


def _local_queue(name: str, wanted: bool) -> str:
    """run-local's queue on this endpoint, or "" when there is none or the command reads no queue."""
    if not wanted:
        return ""
    sqs: SQSClient = clients.sqs()
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if "NonExistentQueue" in code or code == "QueueDoesNotExist":
            return ""
        raise


def _from_stack(stack: str, settings: Settings) -> Target:
    outputs = deployed.stack_outputs(stack)
    required = (OutputKey.ARCHIVE_BUCKET, OutputKey.LEDGER_TABLE, OutputKey.INVOICE_QUEUE)
    missing = [key for key in required if not outputs.get(key)]
    if missing:
        raise CliError(f"stack {stack} has no output {', '.join(missing)}: is it an invoice-archiver stack?")
    lister = outputs.get(OutputKey.LISTER_FUNCTION, "")
    fetcher_config, fetcher_problem = deployed.function_configuration(outputs.get(OutputKey.FETCHER_FUNCTION))
    lister_config, lister_problem = deployed.function_configuration(lister)
    functions: dict[str, str] = {
        **fetcher_config.get("Environment", {}).get("Variables", {}),
        **lister_config.get("Environment", {}).get("Variables", {}),
    }
    unreadable = ""
    if lister_problem or not lister:
        why = lister_problem or "the stack names no lister function"
        unreadable = (
            f"the stack's lister configuration could not be read (lambda:GetFunctionConfiguration: {why})"
        )
    elif fetcher_problem:
        unreadable = f"the stack's fetcher configuration could not be read ({fetcher_problem})"
    try:
        configured = load_settings(functions) if functions else settings
    except ConfigError as exc:
        raise CliError(f"stack {stack}'s function configuration: {config_problem(str(exc))}") from None
    resources = {
        "archive_bucket": outputs[OutputKey.ARCHIVE_BUCKET],
        "ledger_table": outputs[OutputKey.LEDGER_TABLE],
        "invoice_queue_url": outputs[OutputKey.INVOICE_QUEUE],
        "dead_letter_queue_url": outputs.get(OutputKey.DEAD_LETTER_QUEUE, ""),
        "listing_queue_url": configured.listing_queue_url if lister_config else "",
    }
    return Target(
        configured.model_copy(update=resources),
        stack=stack,
        lister_function=lister,
        lister_timeout_seconds=int(lister_config.get("Timeout") or 900),
        configured_by=f"the stack {stack}'s functions" if lister_config else "your environment",
        unreadable=unreadable,
    )
