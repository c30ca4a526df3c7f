"""The API's one Temporal client, made in the lifespan and reconnected if it was down."""

import asyncio
import logging

from temporalio.client import Client

from api.errors import service_unavailable
from config import Settings
from temporal_client import connect, ensure_search_attributes

log = logging.getLogger("backfills.api")
CONNECT_TIMEOUT_SECONDS = 5.0


class TemporalConnection:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        """The shared client; 503 if Temporal cannot be reached now."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    client = await asyncio.wait_for(
                        connect(self._settings), CONNECT_TIMEOUT_SECONDS
                    )
                    await ensure_search_attributes(client, self._settings.temporal_namespace)
                    self._client = client
                except Exception as exc:
                    log.warning(
                        "Temporal unreachable at %s: %s", self._settings.temporal_address, exc
                    )
                    raise service_unavailable("Temporal") from None
            return self._client

    async def is_reachable(self) -> bool:
        try:
            client = await self.client()
            await asyncio.wait_for(client.service_client.check_health(), CONNECT_TIMEOUT_SECONDS)
        except Exception:
            return False
        return True
