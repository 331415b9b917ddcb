"""Clients per source: the function's own credentials, or a payer role's, assumed and kept fresh.

A source (`models.source.Source`) names an account and the role to read it through. `SourceClients`
keeps, per process and per role, one botocore session whose credentials come from `sts:AssumeRole`
(with the ExternalId and the session name `invoice-archiver`), as botocore `RefreshableCredentials`:
refreshed in the background of a call from 15 minutes before expiry, and blocking from 10 minutes before
(botocore's advisory and mandatory windows). Each session shares the data loader of the process's one
botocore session (`dal.clients.botocore_session`), so no service model is parsed twice. Clients are
cached per role and settings; all of it is thread-safe. A source without a role gets the shared clients
of `dal.clients`.

A role that cannot be assumed raises `SourceUnavailable`, naming the role and the reason, at the first
client for it or at a refresh that fails; the caller records it against that source and goes on with the
others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from invoice_archiver.dal import clients, ratelimit
from invoice_archiver.models.source import Source

if TYPE_CHECKING:
    from mypy_boto3_invoicing import InvoicingClient
    from mypy_boto3_sts import STSClient

# What CloudTrail shows in the payer account for every call the archiver makes there.
ROLE_SESSION_NAME: Final = "invoice-archiver"
# STS's default; credentials are refreshed from 15 minutes before they expire.
SESSION_SECONDS: Final = 3600
_POOL = 32


class SourceUnavailable(Exception):
    """A source's role could not be assumed (or refreshed): `role_arn`, `reason`, and the `code` if AWS
    sent one (`AccessDenied`, ...). The message names the role and the reason, never credentials."""

    def __init__(self, role_arn: str, reason: str, code: str = "") -> None:
        super().__init__(f"cannot assume {role_arn}: {reason}")
        self.role_arn = role_arn
        self.reason = reason
        self.code = code


class _Provider(CredentialProvider):
    """Hands a session the refreshable credentials of one role, and nothing else (no env, no profile)."""

    METHOD = "invoice-archiver-source-role"
    CANONICAL_NAME = "invoice-archiver-source-role"

    def __init__(self, credentials: RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        return self._credentials


class SourceClients:
    """Per-process cache of clients per source. `allowed_roles` (SOURCE_ROLE_ARNS's roles) bounds what
    may be assumed, whatever a message says; `clock` (UTC-aware) is what credential expiry is judged by."""

    def __init__(
        self,
        *,
        external_id: str = "",
        allowed_roles: Iterable[str] | None = None,
        session_name: str = ROLE_SESSION_NAME,
        session_seconds: int = SESSION_SECONDS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._external_id = external_id
        self._allowed = None if allowed_roles is None else frozenset(allowed_roles)
        self._session_name = session_name
        self._session_seconds = session_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._role_locks: dict[str, threading.Lock] = {}
        self._sessions: dict[str, botocore.session.Session] = {}
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._paced: set[tuple[Any, ...]] = set()

    # Clients -------------------------------------------------------------------------------------

    def invoicing(
        self, source: Source, *, region: str, max_attempts: int, calls_per_second: float = 0.0
    ) -> InvoicingClient:
        """The Invoicing client for `source`: paced per operation like `clients.invoicing` (each payer has
        its own API limits, so each role its own pace), standard retries."""
        if source.role_arn is None:
            return clients.invoicing(region, max_attempts, calls_per_second)
        key = ("invoicing", source.role_arn, region, max_attempts, calls_per_second)
        config = Config(
            retries={"mode": "standard", "max_attempts": max_attempts}, max_pool_connections=_POOL
        )
        client: InvoicingClient = self._client(
            key, source.role_arn, "invoicing", region, config, lambda c: ratelimit.attach(c, calls_per_second)
        )
        return client

    def sts(self, source: Source) -> STSClient:
        """An STS client with the source's credentials (GetCallerIdentity: whom the archive acts as)."""
        if source.role_arn is None:
            return clients.sts()
        client: STSClient = self._client(("sts", source.role_arn), source.role_arn, "sts", None, None, None)
        return client

    def credentials(self, role_arn: str) -> RefreshableCredentials:
        """The role's refreshable credentials (assumed on first use)."""
        credentials = self._session(role_arn).get_credentials()
        assert isinstance(credentials, RefreshableCredentials)
        return credentials

    def reset(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._clients.clear()

    # Internals -----------------------------------------------------------------------------------

    def _client(
        self,
        key: tuple[Any, ...],
        role_arn: str,
        service: str,
        region: str | None,
        config: Config | None,
        on_create: Callable[[Any], object] | None,
    ) -> Any:
        with self._lock:
            client = self._clients.get(key)
        if client is not None:
            return client
        session = self._session(role_arn)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = session.create_client(service, region_name=region, config=config)
                if on_create is not None:
                    on_create(client)
                self._clients[key] = client
            return client

    def _session(self, role_arn: str) -> botocore.session.Session:
        if self._allowed is not None and role_arn not in self._allowed:
            raise SourceUnavailable(role_arn, "not one of the configured SOURCE_ROLE_ARNS", "NotConfigured")
        with self._lock:
            session = self._sessions.get(role_arn)
            role_lock = self._role_locks.setdefault(role_arn, threading.Lock())
        if session is not None:
            return session
        with role_lock:  # one AssumeRole per role, however many threads ask first
            with self._lock:
                session = self._sessions.get(role_arn)
            if session is not None:
                return session
            first = self._assume(role_arn)
            credentials = RefreshableCredentials(
                access_key=first["access_key"],
                secret_key=first["secret_key"],
                token=first["token"],
                expiry_time=datetime.fromisoformat(first["expiry_time"]),
                refresh_using=lambda: self._assume(role_arn),
                method=_Provider.METHOD,
                time_fetcher=self._clock or _utc_now,
            )
            session = botocore.session.Session()
            shared = clients.botocore_session()
            session.register_component("data_loader", shared.get_component("data_loader"))
            session.register_component(
                "credential_provider", CredentialResolver(providers=[_Provider(credentials)])
            )
            with self._lock:
                self._sessions[role_arn] = session
            return session

    def _assume(self, role_arn: str) -> dict[str, str]:
        """One sts:AssumeRole with the function's own credentials, as botocore's refresh metadata."""
        request: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": self._session_name,
            "DurationSeconds": self._session_seconds,
        }
        if self._external_id:
            request["ExternalId"] = self._external_id
        try:
            response = clients.sts().assume_role(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            raise SourceUnavailable(
                role_arn, f"{code}: {error.get('Message', '')}".strip(": "), code
            ) from None
        except BotoCoreError as exc:
            raise SourceUnavailable(role_arn, str(exc)) from None
        issued = response["Credentials"]
        return {
            "access_key": issued["AccessKeyId"],
            "secret_key": issued["SecretAccessKey"],
            "token": issued["SessionToken"],
            "expiry_time": issued["Expiration"].isoformat(),
        }


def _utc_now() -> datetime:
    return datetime.now(UTC)


@cache
def source_clients(external_id: str = "", allowed_roles: tuple[str, ...] | None = None) -> SourceClients:
    """The process's one `SourceClients` for a configuration (warm invocations reuse its credentials)."""
    return SourceClients(external_id=external_id, allowed_roles=allowed_roles)


def invoicing_for(
    *,
    external_id: str,
    allowed_roles: tuple[str, ...],
    region: str,
    max_attempts: int,
    calls_per_second: float = 0.0,
) -> Callable[[Source], InvoicingClient]:
    """`source -> its Invoicing client`, through the process's `source_clients(external_id,
    allowed_roles)` (looked up at each call, so `reset()` takes effect): only `allowed_roles` may ever be
    assumed, whatever a message names; any other role raises SourceUnavailable (code NotConfigured)."""

    def for_source(source: Source) -> InvoicingClient:
        cache = source_clients(external_id, tuple(allowed_roles))
        return cache.invoicing(
            source, region=region, max_attempts=max_attempts, calls_per_second=calls_per_second
        )

    return for_source


def invoicing_for_role(
    *,
    external_id: str,
    allowed_roles: tuple[str, ...],
    region: str,
    max_attempts: int,
    calls_per_second: float = 0.0,
) -> Callable[[str | None], InvoicingClient]:
    """`role ARN (None: own credentials) -> an Invoicing client`, for the listing, whose queries name
    the credentials they run with (an invoice id is not yet known to belong to an account)."""
    for_source = invoicing_for(
        external_id=external_id,
        allowed_roles=allowed_roles,
        region=region,
        max_attempts=max_attempts,
        calls_per_second=calls_per_second,
    )

    def for_role(role_arn: str | None) -> InvoicingClient:
        if role_arn is None:
            return clients.invoicing(region, max_attempts, calls_per_second)
        return for_source(Source.of_role(role_arn))

    return for_role


def reset() -> None:
    """Forget every cached session and client; `clients.reset()` calls this too (tests that switch
    endpoints call that)."""
    source_clients.cache_clear()


clients.on_reset(reset)
