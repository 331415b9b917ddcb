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
import signal
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoice_archiver.cli.errors import CliError
from invoice_archiver.sandbox import arguments, cost_command
from invoice_archiver.sandbox.faults import FAULT_KINDS, FaultKind, Faults

if TYPE_CHECKING:
    from invoice_archiver.sandbox.dataset import Dataset
    from invoice_archiver.sandbox.identity import Identity
    from invoice_archiver.sandbox.runner import Sandbox
    from invoice_archiver.sandbox.scenario import Scenario


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="run moto + the AWS Invoicing API emulator locally (needs the [local] extra)",
        description="Run moto (S3, SQS, DynamoDB, EventBridge, STS) and the Invoicing emulator on loopback.",
    )
    arguments.dataset_arguments(parser)
    arguments.identity_arguments(parser)
    arguments.fault_arguments(parser)
    arguments.network_arguments(parser)
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
