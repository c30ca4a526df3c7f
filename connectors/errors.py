from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.base import QueryDetail


class ConnectorError(Exception):
    """A run attempt failed; the message is shown to users, so it never carries a secret.

    `query_details` says how far the source got (one entry per query), when it knows.
    """

    retryable: bool = False

    def __init__(self, message: str, *, query_details: "list[QueryDetail] | None" = None) -> None:
        super().__init__(message)
        self.query_details = query_details


class PermanentError(ConnectorError):
    """Retrying cannot help: bad options, a date configured to fail, invalid SQL, HTTP 4xx."""


class TransientError(ConnectorError):
    """Retrying may help: a timeout, a refused connection, a lock, HTTP 429/5xx."""

    retryable = True


class AttemptSuperseded(Exception):
    """Raised by `RunContext.still_current`: a newer attempt of the run has begun, or the run
    has ended, so this attempt must not commit anything. Not a ConnectorError: a connector
    lets it pass (its transaction rolls back) and the attempt ends without retries."""
