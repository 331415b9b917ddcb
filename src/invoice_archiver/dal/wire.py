"""What the API sent that the loaded SDK does not model, kept instead of silently dropped.

botocore parses a response through its service model and drops every member the model does not know.
The start-up guard (dal/sdk.py) makes sure the members of today's API are known; this module catches
the ones AWS adds later: a hook keeps the raw body of each response on the calling thread, and
`unmodeled` lists, by dotted path, what the raw JSON holds that the parsed response lacks.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any

_last_body = threading.local()
HOOK_ID = "invoice-archiver-keep-raw-body"


def keep_raw_bodies(client: Any, event: str) -> None:
    """Keep the raw body of every `event` response (e.g. before-parse.invoicing.ListInvoiceSummaries)."""
    client.meta.events.register(event, _keep, unique_id=f"{HOOK_ID}-{event}")


def _keep(response_dict: dict[str, Any], **_: Any) -> None:
    _last_body.value = response_dict.get("body", b"")


def last_raw_json() -> dict[str, Any]:
    """The JSON body of this thread's last response, consumed: a second read, or a read after a call
    that kept no body, gives {} rather than a stale body. Empty if it was not JSON; numbers with a
    fraction as Decimal, never float (money)."""
    body = getattr(_last_body, "value", b"") or b"{}"
    _last_body.value = b""
    try:
        loaded = json.loads(body, parse_float=Decimal)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def unmodeled(raw: Any, parsed: Any, path: str = "") -> dict[str, Any]:
    """Members present in `raw` (JSON from the wire) and absent from `parsed` (botocore's result)."""
    found: dict[str, Any] = {}
    if isinstance(raw, dict) and isinstance(parsed, dict):
        for key, value in raw.items():
            where = f"{path}.{key}" if path else key
            if key not in parsed:
                found[where] = value
            else:
                found.update(unmodeled(value, parsed[key], where))
    elif isinstance(raw, list) and isinstance(parsed, list | tuple):
        for index, (raw_item, parsed_item) in enumerate(zip(raw, parsed, strict=False)):
            found.update(unmodeled(raw_item, parsed_item, f"{path}[{index}]"))
    return found
