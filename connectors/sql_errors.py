"""Which database errors are worth a retry (transient) and which are not (permanent)."""

import re

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from connectors.errors import ConnectorError, PermanentError, TransientError

_TRANSIENT = re.compile(
    r"database is locked|database table is locked|busy|could not connect|connection refused"
    r"|connection reset|server closed the connection|terminating connection|timeout|timed out"
    r"|too many connections|deadlock detected|could not serialize|the database system is",
    re.IGNORECASE,
)


def reason(exc: SQLAlchemyError) -> str:
    """The driver's own message, without the statement and parameters SQLAlchemy appends."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


# SQLite's answer when the authorizer of a team's source query (connectors/warehouse.py) denies
_NOT_AUTHORIZED = re.compile(r"^(not authorized|authorization denied)")
READ_ONLY_SQLITE = (
    "a SQLite source may only read its own file (no writes, ATTACH, VACUUM INTO, PRAGMA "
    "or extensions)"
)


def classify(exc: SQLAlchemyError, context: str) -> ConnectorError:
    if _NOT_AUTHORIZED.match(reason(exc)):
        return PermanentError(f"{context}: {READ_ONLY_SQLITE}")
    message = f"{context}: {reason(exc)}"
    transient = (isinstance(exc, DBAPIError) and exc.connection_invalidated) or bool(
        _TRANSIENT.search(reason(exc))
    )
    return TransientError(message) if transient else PermanentError(message)
