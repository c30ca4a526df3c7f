"""`Idempotency-Key` on create: what makes two requests the same one, and the header that
says an answer is the backfill an earlier request made (persistence.backfills keeps the
keys: `create_backfill_once`, `keyed_backfill`)."""

import hashlib
import json
from typing import Any

from api.schemas.backfills import CreateBackfillRequest

REPLAYED = "Idempotent-Replayed"
REPLAYED_HEADER: dict[str, Any] = {
    REPLAYED: {
        "description": "`true` when an `Idempotency-Key` of an earlier request made the "
        "backfill: the answer is that backfill as it is now.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def request_digest(transfer_id: int, body: CreateBackfillRequest) -> str:
    """What makes two creates the same request: the transfer and the body as read (so a
    default stated or left out, or the order of the fields, makes no difference)."""
    request = {"transfer_id": transfer_id, **body.model_dump(mode="json")}
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
