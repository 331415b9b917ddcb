"""What is archived for an invoice: from its ledger item while it holds the lists, else from the archive.

The ledger holds an invoice's document lists only while they are small (dal/ledger/item_size.py); an
invoice with more documents has `documents_omitted` and only counts. Its latest summary in the archive
(`latest_summary_key`: summary.json, or the latest revision) always lists every archived document, those the
API no longer lists included (a revision also names those under `documents_no_longer_listed`), so readers
take the lists from there: one small GET, create-only like everything in the archive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from invoice_archiver.dal.ledger.records import InvoiceRecord

# Reads one JSON object of the archive by key (dal.archive.get_json bound to a client and a bucket).
ReadJson = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class ArchivedDocuments:
    documents: list[dict[str, Any]]  # every archived document, as the ledger records them
    no_longer_listed: list[dict[str, Any]]  # those GetInvoicePDF stopped listing (also in `documents`)


def archived_documents(record: InvoiceRecord, read_json: ReadJson) -> ArchivedDocuments:
    """The invoice's document records: the ledger's lists, or its latest summary's when they are omitted."""
    if not record.documents_omitted:
        return ArchivedDocuments(list(record.documents), list(record.documents_no_longer_listed))
    summary = read_json(record.latest_summary)
    documents = list(summary.get("documents", []))
    gone = set(summary.get("documents_no_longer_listed", []))
    return ArchivedDocuments(documents, [d for d in documents if d.get("key") in gone])
