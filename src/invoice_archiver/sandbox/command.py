"""``invoice-archiver sandbox``: run moto and the Invoicing emulator until interrupted.

Prints the ``export`` lines first (flushed, so a parent process can read them from a pipe), including
the accounts to archive (so ``run-local`` in another terminal lists them): ``ACCOUNT_IDS``, or with
``--identity`` (or a scenario's ``identity`` section) ``SOURCE_ROLE_ARNS``, each payer read through its
role (and ``DISCOVER_INVOICE_UNITS=true`` with ``--discover-invoice-units``). Then the dataset, the
identity and the fault settings; then it waits for Ctrl-C or SIGTERM, prints what it served and stops
(exit code 0). Needs the ``local`` extra: ``pip install 'invoice-archiver[local]'``.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import signal
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoice_archiver.cli.errors import CliError
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.source import ROLE_ARN
from invoice_archiver.sandbox import cost_command
from invoice_archiver.sandbox.faults import FAULT_KINDS, FaultKind, Faults

if TYPE_CHECKING:
    from invoice_archiver.sandbox.dataset import Dataset
    from invoice_archiver.sandbox.identity import Identity
    from invoice_archiver.sandbox.runner import Sandbox
    from invoice_archiver.sandbox.scenario import Scenario

RATES = ("throttle-rate", "error-rate", "expired-url-rate", "drop-connection-rate", "truncate-rate")
_ACCOUNT = re.compile(r"^[0-9]{12}$")


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="run moto + the AWS Invoicing API emulator locally (needs the [local] extra)",
        description="Run moto (S3, SQS, DynamoDB, EventBridge, STS) and the Invoicing emulator on loopback.",
    )
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
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="a local address to listen on (default 127.0.0.1)")
    net.add_argument("--port", type=_port, default=0, help="moto port (default: a free port)")
    net.add_argument("--invoicing-port", type=_port, default=0, help="emulator port (default: a free port)")
    net.add_argument(
        "--url-lifetime", type=_at_least(1), default=3600, help="pre-signed URL lifetime in seconds"
    )
    cost_command.add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def sandbox_class() -> type[Sandbox]:
    """The Sandbox, or one line saying which extra to install when moto or werkzeug is missing."""
    try:
        from invoice_archiver.sandbox.runner import Sandbox
    except ImportError as exc:
        raise CliError(
            f"the local sandbox needs the 'local' extra (no module {exc.name!r}): "
            "pip install 'invoice-archiver[local]'"
        ) from None
    return Sandbox


def load_dataset(path: str | Path) -> Dataset:
    """A scenario file, checked; each problem is one CliError line naming the file."""
    from invoice_archiver.sandbox import scenario

    try:
        return scenario.load(path)
    except scenario.ScenarioError as exc:
        raise CliError(f"--dataset {path}: {exc}") from None


def load_scenario(path: str | Path) -> Scenario:
    """A scenario file with its identity section, checked; each problem is one CliError line."""
    from invoice_archiver.sandbox import scenario

    try:
        return scenario.load_scenario(path)
    except scenario.ScenarioError as exc:
        raise CliError(f"--dataset {path}: {exc}") from None


def build_scenario(args: argparse.Namespace) -> Scenario:
    """The dataset, and the identity of the scenario file overlaid with the identity options."""
    from invoice_archiver.sandbox.identity import ARCHIVE_ACCOUNT, ROLE_NAME, Identity, InvoiceUnit
    from invoice_archiver.sandbox.scenario import Scenario

    found = load_scenario(args.dataset) if args.dataset else Scenario(build_dataset(args))
    wanted = args.identity or args.invoice_unit or args.archive_account or args.role_name
    if args.discover_invoice_units and not (wanted or found.identity):
        raise CliError("--discover-invoice-units needs --identity (or a scenario's identity section)")
    if not wanted:
        return Scenario(found.dataset, found.identity, (*found.refused_roles, *args.refuse_assume_role))
    base = found.identity or Identity.payers(enforce=args.identity)
    units = [
        InvoiceUnit(management, f"unit-{number}", f"unit {number}", receiver)
        for number, (management, receiver) in enumerate(args.invoice_unit, start=len(base.invoice_units) + 1)
    ]
    identity = Identity.payers(
        (*base.invoice_units, *units),
        archive_account=args.archive_account or base.accounts_by_key.get("testing", ARCHIVE_ACCOUNT),
        role_name=args.role_name or base.role_name or ROLE_NAME,
        enforce=args.identity or base.enforce,
    )
    return Scenario(found.dataset, identity, (*found.refused_roles, *args.refuse_assume_role))


def describe_identity(identity: Identity | None, refused: tuple[str, ...]) -> str:
    parts = []
    if identity is None or not identity.enforce:
        parts.append("not enforced (any credentials read every account)")
    else:
        archive = ", ".join(sorted(set(identity.accounts_by_key.values())))
        parts.append(
            f"enforced; base credentials act as {archive}, payers read through role {identity.role_name}"
        )
    if identity is not None and identity.invoice_units:
        units = ", ".join(f"{u.management_account} -> {u.receiver}" for u in identity.invoice_units)
        parts.append(f"invoice units {units}")
    if refused:
        parts.append(f"STS refuses AssumeRole of {', '.join(refused)}")
    return "; ".join(parts)


def build_dataset(args: argparse.Namespace) -> Dataset:
    from invoice_archiver.sandbox.dataset import default_dataset, generate

    if args.dataset:
        return load_dataset(args.dataset)
    params: dict[str, Any] = {
        "seed": args.seed,
        "accounts": args.accounts,
        "periods": args.periods,
        "invoices_per_account_period": args.invoices_per_period,
        "document_size": args.document_size,
    }
    given = {k: v for k, v in params.items() if v is not None}
    if not given:
        return default_dataset()
    given.setdefault("periods", schedule_periods())
    return generate(**given)


def schedule_periods(now: datetime | None = None) -> list[tuple[int, int]]:
    """The periods a scheduled run (and run-local without --period) lists today: the last complete one and
    LOOKBACK_PERIODS before it, so that `sandbox --seed N` serves what `run-local` asks for."""
    from invoice_archiver.logic.planning import scheduled_periods

    try:
        lookback = int(os.environ.get("LOOKBACK_PERIODS") or 2)
    except ValueError:
        lookback = 2
    periods = scheduled_periods(now or datetime.now(UTC), max(0, min(lookback, 60)))
    return [(p.year, p.month) for p in periods]


def check_listen(host: str, ports: dict[str, int]) -> None:
    """Refuse, in one line, an address that is not this machine's or a port already in use (the servers
    would print their own multi-line error and exit). `ports`: option -> port (0: any free one)."""
    named = [port for port in ports.values() if port]
    if len(named) != len(set(named)):
        raise CliError(f"{' and '.join(ports)} must differ (both {named[0]})")
    try:
        family = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]
    except OSError as exc:
        raise CliError(f"--host {host}: {exc.strerror or exc}") from None
    for flag, port in ports.items():
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE and port:
                    raise CliError(
                        f"{flag} {port}: in use on {host}; choose another (or 0: any free port)"
                    ) from None
                raise CliError(
                    f"--host {host}: cannot listen there ({exc.strerror or exc}); use a local address"
                ) from None


def build_faults(args: argparse.Namespace) -> Faults:
    return Faults(
        seed=args.fault_seed,
        throttle_rate=args.throttle_rate,
        error_rate=args.error_rate,
        tps_limit={"*": args.tps_limit} if args.tps_limit else {},
        expired_url_rate=args.expired_url_rate,
        drop_connection_rate=args.drop_connection_rate,
        truncate_rate=args.truncate_rate,
        every=dict(args.fault_every),
    )


_FAULT_LABELS: dict[FaultKind, str] = {
    "throttle": "throttling",
    "error": "5xx",
    "expired_url": "expired URLs",
    "drop_connection": "dropped connections",
    "truncate": "truncated bodies",
}


def describe_faults(faults: Faults) -> str:
    parts = [f"{_FAULT_LABELS[kind]} {faults.rate(kind):.0%}" for kind in FAULT_KINDS if faults.rate(kind)]
    parts += [f"{_FAULT_LABELS[kind]} every {n} calls" for kind, n in faults.every.items()]
    parts += [f"TPS limit {limit}/s ({op})" for op, limit in faults.tps_limit.items()]
    return ", ".join(parts) + f" (fault seed {faults.seed})" if parts else "none"


def describe_stats(box: Sandbox) -> str:
    if box.emulator is None:
        return "nothing (no emulator)"
    stats = box.emulator.stats.snapshot()
    calls = ", ".join(f"{op} {count}" for op, count in sorted(stats["calls"].items())) or "no API calls"
    served = (
        f"{calls}; {stats['downloads']} downloads ({stats['download_bytes']} bytes); "
        f"throttled {stats['throttled']} (TPS {stats['tps_throttled']}), 5xx {stats['errors_5xx']}, "
        f"4xx {stats['errors_4xx']}, expired URLs {stats['expired_urls']}, "
        f"rejected URLs {stats['rejected_urls']}, dropped {stats['dropped']}, truncated {stats['truncated']}"
    )
    if box.moto is not None:
        counts: dict[str, int] = {}
        for record in box.moto.requests:
            counts[record.service] = counts.get(record.service, 0) + 1
        served += "; moto: " + (", ".join(f"{s} {n}" for s, n in sorted(counts.items())) or "no requests")
    return served


def run(args: argparse.Namespace) -> int:
    cost_command.check(args)
    sandbox = sandbox_class()
    check_listen(args.host, {"--port": args.port, "--invoicing-port": args.invoicing_port})
    scenario = build_scenario(args)
    box = sandbox(
        scenario.dataset,
        identity=scenario.identity,
        refused_roles=dict.fromkeys(scenario.refused_roles),
        faults=build_faults(args),
        url_lifetime_seconds=args.url_lifetime,
        host=args.host,
        moto_port=args.port,
        invoicing_port=args.invoicing_port,
        use_existing_endpoints=False,
    )
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            box.start()
        except OSError as exc:
            raise CliError(f"cannot start the sandbox on {args.host}: {exc.strerror or exc}") from None
        try:
            for line in box.export_lines():
                print(line, flush=True)
            for name, value in box.archive_env(discover=args.discover_invoice_units).items():
                print(f"export {name}={value}", flush=True)
            print(f"# dataset: {box.dataset.describe()}", flush=True)
            print(f"# identity: {describe_identity(box.identity, scenario.refused_roles)}", flush=True)
            print(f"# faults: {describe_faults(box.faults or Faults())}", flush=True)
            for line in cost_command.write(args, box):
                print(line, flush=True)
            print("# sandbox ready; Ctrl-C to stop", flush=True)
            while not stop.wait(0.2):
                pass
            print(f"# served: {describe_stats(box)}", flush=True)
        finally:
            box.stop()
        print("# sandbox stopped", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
