"""`Sandbox`: moto (with a request log) plus the Invoicing emulator, and the environment that points at them.

    with Sandbox(dataset=generate(seed=1)) as sandbox:
        boto3.client("invoicing").list_invoice_summaries(...)   # reaches the emulator
        sandbox.moto.requests.count(service="s3", operation="PutObject")

An endpoint already configured in the environment (``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_<SERVICE>``)
is used instead of starting our own for that part; then ``sandbox.moto`` (or ``sandbox.emulator``) is None.

Several payers, each read through its role, one of which STS refuses:

    identity = Identity.payers([InvoiceUnit(PAYER, "unit-1", "EMEA", RECEIVER)])
    with Sandbox(dataset, identity=identity, refused_roles={identity.role_arn(BROKEN): "no trust"}) as box:
        box.archive_env()   # {"SOURCE_ROLE_ARNS": "...", ...}: what the archiver needs to read them
        box.refuse_assume_role(identity.role_arn(OTHER))    # and later: box.allow_assume_role()
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType

from invoice_archiver.sandbox.dataset import Dataset, default_dataset
from invoice_archiver.sandbox.emulator import InvoicingEmulator
from invoice_archiver.sandbox.faults import Faults, Latency
from invoice_archiver.sandbox.identity import Identity
from invoice_archiver.sandbox.motoserver import MotoProcess, MotoServer
from invoice_archiver.sandbox.request_log import refusal_message

MOTO_SERVICES = ("S3", "SQS", "DYNAMODB", "EVENTBRIDGE", "STS")
DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class Sandbox:
    def __init__(
        self,
        dataset: Dataset | None = None,
        *,
        faults: Faults | None = None,
        latency: Latency | None = None,
        url_lifetime_seconds: int = 3600,
        host: str = "127.0.0.1",
        moto_port: int = 0,
        invoicing_port: int = 0,
        clock: Callable[[], datetime] | None = None,
        use_existing_endpoints: bool = True,
        reset_moto: bool = True,
        moto_in_process: bool = True,
        identity: Identity | None = None,
        refused_roles: Mapping[str, str | None] | None = None,
    ) -> None:
        self.identity = identity  # None: no identity rules (sandbox/identity.py)
        # role ARN -> message (None: STS's usual one) of the AccessDenied moto's STS answers AssumeRole with
        self.refused_roles = {
            arn: message or refusal_message(arn) for arn, message in (refused_roles or {}).items()
        }
        self.dataset = dataset if dataset is not None else default_dataset()
        self.faults = faults
        self.latency = latency  # cloud-shaped answers (faults.CLOUD) for benchmarks; None: loopback speed
        self.url_lifetime_seconds = url_lifetime_seconds
        self.host = host
        self.moto_port = moto_port
        self.invoicing_port = invoicing_port
        self.clock = clock
        self.use_existing_endpoints = use_existing_endpoints
        self.reset_moto = reset_moto
        self.moto_in_process = moto_in_process
        self._moto_process: MotoProcess | None = None
        self.moto: MotoServer | None = None
        self.emulator: InvoicingEmulator | None = None
        self.env: dict[str, str] = {}
        self.moto_url: str | None = None
        self.invoicing_url: str | None = None
        self._saved: dict[str, str | None] = {}

    def start(self) -> Sandbox:
        existing = {k: v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL")}
        if not self.use_existing_endpoints:
            existing = {}
        try:
            self._start_moto(existing)
            self._start_emulator(existing)
        except BaseException:
            self.stop()
            raise
        env = {k: os.environ.get(k) or v for k, v in DEFAULTS.items()}
        if self.moto_url and "AWS_ENDPOINT_URL" not in existing:
            env["AWS_ENDPOINT_URL"] = self.moto_url
        if self.emulator is not None:
            env["AWS_ENDPOINT_URL_INVOICING"] = self.emulator.url
        self.env = env
        self._saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        return self

    def _start_moto(self, existing: dict[str, str]) -> None:
        covered = "AWS_ENDPOINT_URL" in existing or all(
            f"AWS_ENDPOINT_URL_{s}" in existing for s in MOTO_SERVICES
        )
        if covered:
            self.moto_url = existing.get("AWS_ENDPOINT_URL")
            return
        if not self.moto_in_process:
            # A child process: faster (no shared GIL), but its request log is not visible here.
            self._moto_process = MotoProcess(
                self.host, self.moto_port, self.latency, self.refused_roles
            ).start()
            self.moto_url = self._moto_process.url
            return
        self.moto = MotoServer(self.host, self.moto_port, self.latency, self.refused_roles).start()
        self.moto_url = self.moto.url
        if self.reset_moto:
            self.moto.reset_state()

    def _start_emulator(self, existing: dict[str, str]) -> None:
        if "AWS_ENDPOINT_URL_INVOICING" in existing:
            self.invoicing_url = existing["AWS_ENDPOINT_URL_INVOICING"]
            return
        if self.identity is not None and self.identity.sts_endpoint is None:
            self.identity.sts_endpoint = self.moto_url  # assumed roles' keys are moto's STS's
        self.emulator = InvoicingEmulator(
            self.dataset,
            identity=self.identity,
            faults=self.faults,
            latency=self.latency,
            url_lifetime_seconds=self.url_lifetime_seconds,
            host=self.host,
            port=self.invoicing_port,
            clock=self.clock,
        ).start()
        self.invoicing_url = self.emulator.url

    def stop(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved = {}
        if self.emulator is not None:
            self.emulator.stop()
        if self.moto is not None:
            self.moto.stop()
        if self._moto_process is not None:
            self._moto_process.stop()
            self._moto_process = None

    def refuse_assume_role(self, role_arn: str, message: str | None = None) -> None:
        """From now on moto's STS answers AssumeRole of `role_arn` with AccessDenied (botocore: a
        ClientError with code `AccessDenied` and `message`). Needs moto in this process."""
        self._in_process_moto("refuse_assume_role").refuse_assume_role(role_arn, message)
        self.refused_roles[role_arn] = message or refusal_message(role_arn)

    def allow_assume_role(self, role_arn: str | None = None) -> None:
        """Let `role_arn` (None: every refused role) be assumed again."""
        self._in_process_moto("allow_assume_role").allow_assume_role(role_arn)
        if role_arn is None:
            self.refused_roles.clear()
        else:
            self.refused_roles.pop(role_arn, None)

    def _in_process_moto(self, what: str) -> MotoServer:
        if self.moto is None:
            raise RuntimeError(
                f"{what} needs the sandbox's own moto in this process (started, moto_in_process=True, "
                "no AWS_ENDPOINT_URL reused); pass refused_roles= to the constructor instead"
            )
        return self.moto

    def archive_env(self, *, discover: bool = False) -> dict[str, str]:
        """The accounts to archive, as the archiver's variables: ``ACCOUNT_IDS`` (the dataset's accounts,
        read with the base credentials) without enforced identity; with it, ``SOURCE_ROLE_ARNS`` (each
        payer through its role, each invoice unit's receiver through its management account's role), and
        with `discover` only the payers plus ``DISCOVER_INVOICE_UNITS=true``."""
        if self.identity is None or not self.identity.enforce:
            return {"ACCOUNT_IDS": ",".join(self.dataset.accounts)}
        env = {
            "SOURCE_ROLE_ARNS": ",".join(
                self.identity.source_role_arns(self.dataset.accounts, discover=discover)
            )
        }
        if discover:
            env["DISCOVER_INVOICE_UNITS"] = "true"
        return env

    def export_lines(self) -> list[str]:
        """``export NAME=value`` lines for a shell (or a parent process reading a pipe)."""
        return [f"export {name}={value}" for name, value in sorted(self.env.items())]

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
