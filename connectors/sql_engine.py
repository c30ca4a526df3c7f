"""One SQLAlchemy engine per database URL (and checked address), shared by the SQL connectors
of a worker.

A connector URL is a tenant's choice, so before an engine is handed out the egress policy is
applied on every call (every run), not once per cached engine: only PostgreSQL (through
psycopg) and SQLite are accepted; a PostgreSQL URL must name a host (libpq's default is the
worker's local socket) and carry no libpq parameter beyond `LIBPQ_PARAMETERS` (the others can
point libpq at a socket, a service file or local key files); its host is resolved and checked,
the service's own databases are refused, and the connection is pinned to the checked address
with libpq's `hostaddr` (`host` stays, for TLS verification), so DNS rebinding cannot move it.
libpq never lends a tenant's connection the worker's own password, client certificate or
Kerberos credentials.
"""

import os
import secrets
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from connectors.egress import POSTGRESQL_PORT, EgressPolicy, EgressRefused
from persistence.db import normalize_url

CONNECT_TIMEOUT_SECONDS = 10
LIBPQ_PARAMETERS = frozenset(
    {"sslmode", "connect_timeout", "application_name", "target_session_attrs"}
)


def engine_for(url: str, policy: EgressPolicy, *, read_only: bool = False) -> Engine:
    """An engine for `url` (plain `postgresql://` uses the psycopg 3 driver) that `policy`
    allows; connections are checked before use, so one dropped by the server is replaced
    instead of failing a run. `read_only` opens a SQLite file read-only (and never creates a
    missing one).

    Raises `EgressRefused` (a PermanentError) for a URL the policy refuses, TransientError
    for a host that does not resolve, `sqlalchemy.exc.ArgumentError` (or a driver's
    ImportError) for a URL that cannot be used; never puts the URL in a message.
    """
    parsed = make_url(normalize_url(url))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _engine(url, hostaddr=None, read_only=read_only)
    if backend != "postgresql":
        raise EgressRefused(
            f"{backend} databases are not supported: a connector URL is postgresql:// or sqlite://"
        )
    return _engine(url, hostaddr=checked_postgresql_address(parsed, policy), read_only=False)


def checked_postgresql_address(parsed: URL, policy: EgressPolicy) -> str:
    """The address to connect to for the PostgreSQL URL `parsed`, once `policy` allows it."""
    if parsed.get_driver_name() != "psycopg":
        raise EgressRefused(
            "only the psycopg driver is supported for PostgreSQL (postgresql:// or "
            "postgresql+psycopg://)"
        )
    if forbidden := sorted(set(parsed.query) - LIBPQ_PARAMETERS):
        raise EgressRefused(
            f"the URL parameter(s) {', '.join(forbidden)} are not allowed; a connector URL may "
            f"only set {', '.join(sorted(LIBPQ_PARAMETERS))}"
        )
    host = parsed.host
    if not host:
        raise EgressRefused(
            "the URL names no host (postgresql://user@host/database); connecting to the "
            "worker's local PostgreSQL socket is not allowed"
        )
    if any(char in host for char in "/,"):  # a socket directory, or several hosts
        raise EgressRefused("the URL's host must be one host name or IP address")
    addresses = policy.resolve(host, parsed.port or POSTGRESQL_PORT)
    policy.check_database(parsed, addresses)
    return addresses[0]


@lru_cache(maxsize=32)
def _engine(url: str, *, hostaddr: str | None, read_only: bool) -> Engine:
    parsed = make_url(normalize_url(url))
    if read_only:
        parsed = _read_only_sqlite(parsed)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = {"hostaddr": hostaddr, **_without_worker_credentials(parsed)}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


def _without_worker_credentials(parsed: URL) -> dict[str, str]:
    """libpq fills in what a URL leaves out from the worker's own defaults: `PGPASSWORD`, a
    password file (`PGPASSFILE`, ~/.pgpass), a service file's password, a client
    certificate (`PGSSLCERT`, ~/.postgresql/postgresql.crt), its Kerberos credentials. A
    tenant's URL must never get them, or its server could ask for them and use them. So no
    password file is read, no client certificate is offered, GSSAPI is never used, and a URL
    without a password gets one nobody knows (sent only if its server asks for one, so a
    server that does not still answers)."""
    settings = {
        "passfile": os.devnull,
        "sslcertmode": "disable",
        "gssencmode": "disable",
        "require_auth": "!gss,!sspi",
    }
    if parsed.password is None:
        settings["password"] = secrets.token_urlsafe(32)
    return settings


def _read_only_sqlite(parsed: URL) -> URL:
    if (
        parsed.get_backend_name() != "sqlite"
        or parsed.database in (None, "", ":memory:")
        or "uri" in parsed.query
    ):
        return parsed
    return parsed.set(
        database=f"file:{quote(parsed.database)}",
        query={**parsed.query, "mode": "ro", "uri": "true"},
    )
