"""A source: an account whose invoices are archived, and the role (if any) that reads them.

`SOURCE_ROLE_ARNS` holds comma-separated entries, each either

* `<role-arn>`: archive the role's own account, through that role; or
* `<account-id>=<role-arn>`: archive that account through a role in another account, typically its
  payer (an invoice-unit receiver, read by its management account with `ACCOUNT_ID` selectors).

Accounts in `ACCOUNT_IDS` are sources too, read with the function's own credentials (`role_arn` None).
A source is what a message carries: the account and the role's ARN, never credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ASCII only: `\d` and `\w` would accept other scripts' digits and letters, which AWS does not. `\Z`,
# not `$`, which would let a trailing newline through. A comma, which IAM allows in role names, is refused:
# SOURCE_ROLE_ARNS is a comma-separated list, so such a role could never be named in it.
ROLE_ARN = re.compile(
    r"^arn:aws(?:-cn|-us-gov)?:iam::(\d{12}):role/(?:[\w+=.@-]+/)*[\w+=.@-]{1,64}\Z", re.ASCII
)
ACCOUNT_ID = re.compile(r"^\d{12}\Z", re.ASCII)
EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}\Z", re.ASCII)


class SourceRefused(ValueError):
    """A message, a listing continuation or a lister request names a source (an account, and the role to
    read it through) that is neither configured nor discovered: refused, with the reason, and counted."""


@dataclass(frozen=True)
class Source:
    """An account to archive, and the role to read it through (None: the function's own credentials)."""

    account_id: str
    role_arn: str | None = None

    def __post_init__(self) -> None:
        if not ACCOUNT_ID.match(self.account_id):
            raise ValueError(f"not a 12-digit account id: {self.account_id!r}")
        if self.role_arn is not None and not ROLE_ARN.match(self.role_arn):
            raise ValueError(f"not an IAM role ARN: {self.role_arn!r}")

    @classmethod
    def of_role(cls, role_arn: str) -> Source:
        """The role's own account, read through the role."""
        match = ROLE_ARN.match(role_arn)
        if match is None:
            raise ValueError(f"not an IAM role ARN: {role_arn!r}")
        return cls(match.group(1), role_arn)

    @property
    def role_account_id(self) -> str | None:
        """The account the role lives in (the payer), or None for the function's own credentials."""
        if self.role_arn is None:
            return None
        match = ROLE_ARN.match(self.role_arn)
        assert match is not None  # checked in __post_init__
        return match.group(1)

    def __str__(self) -> str:
        if self.role_arn is None:
            return self.account_id
        if self.role_account_id == self.account_id:
            return self.role_arn
        return f"{self.account_id}={self.role_arn}"


def parse_source(entry: str) -> Source:
    """One `SOURCE_ROLE_ARNS` entry: `<role-arn>` or `<account-id>=<role-arn>`."""
    text = entry.strip()
    account, separator, arn = text.partition("=")
    if not separator or text.startswith("arn:"):  # a role name may contain '=' itself
        account, arn = "", text
    else:
        account, arn = account.strip(), arn.strip()
        if not ACCOUNT_ID.match(account):
            raise ValueError(f"{text!r}: {account!r} before '=' is not a 12-digit account id")
    match = ROLE_ARN.match(arn)
    if not match:
        raise ValueError(
            f"{text!r}: not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>), "
            "nor <account-id>=<role-arn>"
        )
    return Source(account_id=account or match.group(1), role_arn=arn)


def parse_sources(entries: tuple[str, ...] | list[str]) -> tuple[Source, ...]:
    """All entries; an account listed twice (through two roles, or twice) is refused."""
    sources = tuple(parse_source(entry) for entry in entries)
    seen: dict[str, Source] = {}
    for source in sources:
        if source.account_id in seen:
            raise ValueError(
                f"account {source.account_id} is listed twice ({seen[source.account_id]} and {source}); "
                "each account is read through one role"
            )
        seen[source.account_id] = source
    return sources


def role_arns(sources: tuple[Source, ...]) -> tuple[str, ...]:
    """The distinct role ARNs, in order of first appearance (what the functions may assume)."""
    return tuple(dict.fromkeys(s.role_arn for s in sources if s.role_arn is not None))
