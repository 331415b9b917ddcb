"""A ledger item stays far below DynamoDB's 400 KB item limit, whatever the invoice.

Everything in an item is bounded by construction (ids, keys, a reason cut to 1,000 characters, an event
detail of at most 64 KB, see logic/announcements.py) except an invoice's document lists: `documents` and
`documents_no_longer_listed` grow with its supplemental documents. They are held in the item while their
JSON is at most `MAX_LIST_BYTES` together (about 50 documents); beyond that the item holds neither, only
`document_count` and `documents_omitted = true`, and readers take the lists from the invoice's latest
summary in the archive (`latest_summary_key`), which always lists every archived document
(logic/archived_documents.py). Small items also keep every later write cheap: DynamoDB bills an update by
the size of the larger of the item's old and new versions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

MAX_LIST_BYTES: Final = 16 * 1024
OMITTED: Final = "documents_omitted"


def json_size(value: object) -> int:
    """Bytes of `value` as compact JSON: close to what DynamoDB counts for names and values."""
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


@dataclass(frozen=True)
class DocumentLists:
    """What an update writes for an invoice's document lists: held (both given) or omitted (None)."""

    documents: Sequence[dict[str, Any]] | None
    no_longer_listed: Sequence[dict[str, Any]] | None
    count: int
    # False: the update leaves `documents_no_longer_listed` as it is (a first archive does not know it).
    with_no_longer_listed: bool

    @property
    def held(self) -> bool:
        return self.documents is not None

    @property
    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {":count": self.count}
        if self.documents is not None:
            values[":documents"] = list(self.documents)
        if self.no_longer_listed is not None and self.with_no_longer_listed:
            values[":gone"] = list(self.no_longer_listed)
        if not self.held:
            values[":omitted"] = True
        return values

    def sets(self) -> list[str]:
        """`name = :value` for each attribute written (document_count is always written)."""
        sets = ["document_count = :count"]
        if self.held:
            sets.append("documents = :documents")
            if self.with_no_longer_listed:
                sets.append("documents_no_longer_listed = :gone")
        else:
            sets.append(f"{OMITTED} = :omitted")
        return sets

    def removes(self) -> list[str]:
        """Each attribute removed."""
        return [OMITTED] if self.held else ["documents", "documents_no_longer_listed"]

    def set_clause(self) -> str:
        return "".join(f", {clause}" for clause in self.sets())

    def remove_clause(self) -> str:
        return "".join(f", {name}" for name in self.removes())


def document_lists(
    documents: Sequence[dict[str, Any]], no_longer_listed: Sequence[dict[str, Any]] | None = None
) -> DocumentLists:
    """Hold the lists if they are small enough together, else omit both (the archive's summary has them)."""
    gone = list(no_longer_listed or [])
    both = no_longer_listed is not None
    if json_size([list(documents), gone]) <= MAX_LIST_BYTES:
        return DocumentLists(documents, gone, len(documents), with_no_longer_listed=both)
    return DocumentLists(None, None, len(documents), with_no_longer_listed=both)
