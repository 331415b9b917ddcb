"""What the fetcher tells people: reasons with URLs and signatures redacted, and a notice for every
document the API did not fully describe (archived and recorded as such, never silently)."""

from __future__ import annotations

import re

from invoice_archiver.constants import Metric
from invoice_archiver.models.documents import ArchivedDocument
from invoice_archiver.observability import logger, metrics

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*(://|%3A%2F%2F)\S+", re.IGNORECASE)
_SIGNATURE = re.compile(r"(X-Amz-[A-Za-z-]+|Signature|Expires|AWSAccessKeyId)=[^&\s]+", re.IGNORECASE)


def redact(text: str) -> str:
    """Remove anything URL-like or signature-like from text bound for a log line or a stored record."""
    return _SIGNATURE.sub(r"\1=<redacted>", _URL.sub("<url redacted>", text))


def report_undescribed(documents: list[ArchivedDocument]) -> None:
    """A document the API did not fully describe is archived and recorded as such, never silently."""
    for document in documents:
        if document.omitted_by_api:
            metrics.add_metric(name=Metric.DOCUMENTS_UNDESCRIBED, unit="Count", value=1)
            logger.warning(
                "the API omitted a supplemental document's type or id",
                extra={"omitted": list(document.omitted_by_api), "key": document.key},
            )
        elif not document.type_recognized:
            metrics.add_metric(name=Metric.UNRECOGNIZED_DOCUMENT_TYPES, unit="Count", value=1)
            logger.warning(
                "supplemental document of a type this version does not know, filed under that type",
                extra={"document_type": document.document_type, "key": document.key},
            )
