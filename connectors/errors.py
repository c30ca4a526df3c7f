class ConnectorError(Exception):
    """A run attempt failed; the message is shown to users, so it never carries a secret."""

    retryable: bool = False


class PermanentError(ConnectorError):
    """Retrying cannot help: bad options, a date configured to fail, invalid SQL, HTTP 4xx."""


class TransientError(ConnectorError):
    """Retrying may help: a timeout, a refused connection, a lock, HTTP 429/5xx."""

    retryable = True
