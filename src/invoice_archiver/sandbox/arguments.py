"""`invoice-archiver sandbox`'s options: what the sandbox serves (dataset), who may read what (identity),
what goes wrong (faults), where it listens (network) and the cost exports it writes (cost_command.py).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.source import ROLE_ARN
from invoice_archiver.sandbox.faults import FAULT_KINDS, FaultKind

RATES = ("throttle-rate", "error-rate", "expired-url-rate", "drop-connection-rate", "truncate-rate")
_ACCOUNT = re.compile(r"^[0-9]{12}$")


def dataset_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("dataset")
    data.add_argument("--dataset", metavar="PATH", help="JSON scenario file (see docs/sandbox.md)")
    data.add_argument("--seed", type=int, help="generate a dataset with this seed")
    data.add_argument("--accounts", type=_accounts, help="comma-separated 12-digit account ids")
    data.add_argument(
        "--periods",
        type=_periods,
        help="comma-separated billing periods, e.g. 2026-09,2026-10 (default: what a scheduled run lists "
        "today, the last complete period and LOOKBACK_PERIODS (2) before it, as run-local does)",
    )
    data.add_argument(
        "--invoices-per-period", type=_at_least(0), help="invoices per account and billing period"
    )
    data.add_argument("--document-size", type=_at_least(1), help="size in bytes of every PDF document")


def identity_arguments(parser: argparse.ArgumentParser) -> None:
    who = parser.add_argument_group("identity (several payers, each read through its role)")
    who.add_argument(
        "--identity",
        action="store_true",
        help="enforce who may read what: the base credentials read nothing, each payer only through its "
        "role; prints SOURCE_ROLE_ARNS instead of ACCOUNT_IDS",
    )
    who.add_argument(
        "--archive-account",
        type=_account,
        help="with --identity: the account the base credentials act as (default 999999999999)",
    )
    who.add_argument("--role-name", help="the payer role's name (default invoice-archiver-reader)")
    who.add_argument(
        "--invoice-unit",
        action="append",
        type=_unit,
        default=[],
        metavar="MANAGEMENT=RECEIVER",
        help="an invoice unit: RECEIVER's invoices are read through MANAGEMENT's role (repeatable)",
    )
    who.add_argument(
        "--discover-invoice-units",
        action="store_true",
        help="print only the payers' roles and DISCOVER_INVOICE_UNITS=true (the lister finds receivers)",
    )
    who.add_argument(
        "--refuse-assume-role",
        action="append",
        type=_role_arn,
        default=[],
        metavar="ROLE_ARN",
        help="moto's STS answers AssumeRole of this role with AccessDenied (repeatable)",
    )


def fault_arguments(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("faults")
    for name in RATES:
        faults.add_argument(f"--{name}", type=_share, default=0.0, metavar="SHARE", help="0.0 to 1.0")
    faults.add_argument("--tps-limit", type=_at_least(1), help="max API calls per second per operation")
    faults.add_argument("--fault-seed", type=int, default=0, help="seed of the per-call fault draws")
    faults.add_argument(
        "--fault-every",
        action="append",
        type=_every,
        default=[],
        metavar="KIND=N",
        help="every Nth call fails that way (repeatable); KIND: "
        + ", ".join(kind.replace("_", "-") for kind in FAULT_KINDS),
    )


def network_arguments(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="a local address to listen on (default 127.0.0.1)")
    net.add_argument("--port", type=_port, default=0, help="moto port (default: a free port)")
    net.add_argument("--invoicing-port", type=_port, default=0, help="emulator port (default: a free port)")
    net.add_argument(
        "--url-lifetime", type=_at_least(1), default=3600, help="pre-signed URL lifetime in seconds"
    )


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _account(value: str) -> str:
    if not _ACCOUNT.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 12-digit account id")
    return value


def _unit(value: str) -> tuple[str, str]:
    management, separator, receiver = value.partition("=")
    if not separator or not _ACCOUNT.match(management.strip()) or not _ACCOUNT.match(receiver.strip()):
        raise argparse.ArgumentTypeError(f"{value!r} is not MANAGEMENT=RECEIVER (two 12-digit account ids)")
    return management.strip(), receiver.strip()


def _role_arn(value: str) -> str:
    if not ROLE_ARN.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an IAM role ARN (arn:aws:iam::<12 digits>:role/NAME)"
        )
    return value


def _accounts(value: str) -> list[str]:
    accounts = _csv(value)
    bad = [a for a in accounts if not _ACCOUNT.match(a)]
    if bad or not accounts:
        raise argparse.ArgumentTypeError(f"not 12-digit account ids: {', '.join(bad) or repr(value)}")
    return accounts


def _periods(value: str) -> list[tuple[int, int]]:
    try:
        periods = [BillingPeriod.parse(item) for item in _csv(value)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not periods:
        raise argparse.ArgumentTypeError("name at least one billing period YYYY-MM")
    return [(p.year, p.month) for p in periods]


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number between 0 and 1") from None
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1 (a share: 0.2 is 20 %)")
    return share


def _every(value: str) -> tuple[FaultKind, int]:
    """`--fault-every truncate=7`: (kind, N); the kind may be spelled with hyphens or underscores."""
    name, separator, number = value.partition("=")
    kinds = {kind.replace("_", "-"): kind for kind in FAULT_KINDS}
    kind = kinds.get(name.strip().lower().replace("_", "-"))
    if not separator or kind is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not KIND=N with KIND one of {', '.join(kinds)}")
    return kind, _at_least(1)(number.strip())


def _at_least(low: int) -> Any:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if number < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return number

    return parse


def _port(value: str) -> int:
    port: int = _at_least(0)(value)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0-65535)")
    return port
