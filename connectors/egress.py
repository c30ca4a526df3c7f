"""The outbound network policy of connectors: which addresses a run may connect to.

Link-local and cloud-metadata addresses are always refused; loopback, private and other
non-global ranges only where `allowed_networks` (BACKFILLS_CONNECTOR_ALLOWED_NETWORKS) holds
them. The service's own databases (`protected_databases`) are never a connector target.

Tenants write connector options, so every host here is chosen by a possible attacker: a check
covers every address a name resolves to, an IPv6 address that carries an IPv4 one (mapped,
NAT64, 6to4, Teredo) is checked as that IPv4 address, and a connection goes to exactly the
address that was checked (`resolve` returns it), so a DNS answer that changes between the
check and the connection (rebinding) cannot redirect it. Refusal messages name the host as
written and the kind of address, never the address a name resolved to.
"""

import getpass
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import TYPE_CHECKING

import httpcore
import httpx
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from connectors.errors import PermanentError

if TYPE_CHECKING:
    from config import Settings


IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

LINK_LOCAL = "a link-local or cloud-metadata address"
UNSPECIFIED = "an unspecified address"
MULTICAST = "a multicast address"
BROADCAST = "a broadcast address"
RESERVED = "a reserved address"
LOOPBACK = "a loopback address"
PRIVATE = "a private address"
ALLOWABLE = (LOOPBACK, PRIVATE)  # the kinds `allowed_networks` can open

PROTECTED = "the service's own database is not a connector target"
POSTGRESQL_PORT = 5432

_METADATA = frozenset(
    ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack (also link-local)
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
_THIS_NETWORK = ip_network("0.0.0.0/8")  # Linux connects 0.0.0.0 to the local machine
_BROADCAST = ip_address("255.255.255.255")
_NAT64 = ip_network("64:ff9b::/96")
_NAT64_LOCAL = ip_network("64:ff9b:1::/48")  # site-local NAT64: treated as private
_THIS_MACHINE = "this machine"  # the host key of every address of the local machine


@dataclass(frozen=True)
class EgressPolicy:
    allowed_networks: tuple[IPNetwork, ...] = ()
    protected_databases: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: "Settings") -> "EgressPolicy":
        """The worker's policy: BACKFILLS_CONNECTOR_ALLOWED_NETWORKS, and the service's own
        database plus BACKFILLS_PROTECTED_DATABASE_URLS as protected databases."""
        return cls(
            allowed_networks=parse_networks(settings.connector_allowed_networks),
            protected_databases=(
                settings.resolved_database_url,
                *settings.protected_database_urls,
            ),
        )

    def check_address(self, ip: str | IPAddress, host: str | None = None) -> None:
        """Raise `EgressRefused` unless a connection to `ip` is allowed; `host` is what the
        user wrote (default: `ip` itself), the only name the message gives."""
        address = ip if isinstance(ip, IPv4Address | IPv6Address) else ip_address(ip)
        kind = self.refusal(address)
        if kind is not None:
            literal = host is None or _is_ip_literal(host)
            raise _refused(_refusal_message(host or str(ip), kind, literal=literal))

    def refusal(self, ip: IPAddress) -> str | None:
        """The kind of address `ip` is if a connection to it is refused (LOOPBACK, ...)."""
        for reached in _reached_addresses(ip):
            kind = _kind(reached)
            if kind in ALLOWABLE and any(reached in net for net in self.allowed_networks):
                continue
            if kind is not None:
                return kind
        return None

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of `host`, each one checked; connect to one of these, never to
        `host` again (a second lookup may answer something else).

        An IP literal, in any form getaddrinfo accepts (`127.1`, `2130706433`, `0x7f.1`),
        is checked as the address it parses to. Raises `EgressRefused` if any address is
        refused (one good address does not excuse a bad one), and `TransientError` if
        `host` does not resolve.
        """
        addresses = _lookup(host, port)
        for address in addresses:
            self.check_address(address, host)
        return addresses

    def check_database(self, url: URL, addresses: Sequence[str]) -> None:
        """Raise `EgressRefused` if the PostgreSQL `url`, whose host resolved to the
        (already checked) `addresses`, is one of the protected databases."""
        target = _database_of(url, _host_keys(url.host, addresses))
        protected = _protected(self.protected_databases, _lookup_quietly)
        if any(target.same_as(database) for database in protected):
            raise _refused(PROTECTED)


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"connector allowed networks: {cidr!r} is not a network such as 10.0.0.0/8"
            ) from None
    return tuple(networks)


def refuse_protected_database(url: str, protected: tuple[str, ...]) -> None:
    """Raise ValueError if `url` names one of the `protected` PostgreSQL databases, as far
    as can be told without DNS: for a transfer being saved. Host names are compared as
    written (`localhost` and loopback literals as this machine); the run checks again with
    the resolved addresses. A URL holding `${NAME}` references is checked at run time only.
    """
    if "${" in url:
        return
    for target_url in _postgresql_urls([url]):
        target = _database_of(target_url, _host_keys(target_url.host, _numeric(target_url.host)))
        if any(target.same_as(other) for other in _protected(protected, _numeric)):
            raise ValueError(PROTECTED)


# --- addresses ---------------------------------------------------------------------------


def _reached_addresses(ip: IPAddress) -> tuple[IPAddress, ...]:
    """The addresses a connection to `ip` really reaches: the IPv4 address embedded in an
    IPv4-mapped, NAT64 or 6to4 address; for Teredo, both its server and its client."""
    if isinstance(ip, IPv4Address):
        return (ip,)
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip in _NAT64:
        return (IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    return (ip,)


def _kind(ip: IPAddress) -> str | None:
    """What kind of refused address `ip` is; None for a global one. The order matters:
    loopback (::1) and unspecified (::) addresses are also IPv6 "reserved"."""
    if ip in _METADATA or ip.is_link_local:
        return LINK_LOCAL
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return UNSPECIFIED
    if ip.is_multicast:
        return MULTICAST
    if ip == _BROADCAST:
        return BROADCAST
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_reserved:
        return RESERVED
    if not ip.is_global or ip in _NAT64_LOCAL:
        return PRIVATE
    return None


def _refusal_message(host: str, kind: str, *, literal: bool) -> str:
    verb = "is" if literal else "resolves to"
    message = f"connecting to {host} is not allowed: it {verb} {kind}"
    if kind in ALLOWABLE:
        message += " outside the networks the service allows (BACKFILLS_CONNECTOR_ALLOWED_NETWORKS)"
    return message


def _lookup(host: str, port: int | None) -> list[str]:
    """The addresses of a host a tenant chose; raises `TransientError` if it has none."""
    from connectors.errors import TransientError  # late: see _egress_refused

    try:
        return _getaddrinfo(host, port)
    except (OSError, UnicodeError):
        raise TransientError(f"could not resolve host {host or '(empty)'}") from None


def _lookup_quietly(host: str | None) -> list[str]:
    """The addresses of a host the service itself configured; none if it does not resolve
    (it is then compared by name only)."""
    try:
        return _getaddrinfo(host, None) if host else []
    except (OSError, UnicodeError):
        return []


def _getaddrinfo(host: str, port: int | None, flags: int = 0) -> list[str]:
    """Every address getaddrinfo gives for `host`, in its order, without repeats."""
    if not host:
        raise socket.gaierror("empty host name")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise socket.gaierror("no address")
    return addresses


def _numeric(host: str | None) -> list[str]:
    """The address of an IP literal (any form getaddrinfo accepts), without DNS; else none."""
    try:
        return _getaddrinfo(host, None, flags=socket.AI_NUMERICHOST) if host else []
    except (OSError, UnicodeError):
        return []


def _is_ip_literal(host: str) -> bool:
    return bool(_numeric(host))


def _is_own_address(ip: IPAddress) -> bool:
    """Whether `ip` is an address of this machine: only then can a socket bind to it."""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(ip), 0))
    except OSError:
        return False
    return True


# --- protected databases -----------------------------------------------------------------


@dataclass(frozen=True)
class _Database:
    hosts: frozenset[str]  # the host as written, and its addresses (see _host_keys)
    port: int
    name: str

    def same_as(self, other: "_Database") -> bool:
        return (
            self.port == other.port and self.name == other.name and bool(self.hosts & other.hosts)
        )


def _host_keys(host: str | None, addresses: Iterable[str]) -> frozenset[str]:
    """What identifies a server's host: its name and addresses, where every address of this
    machine (loopback, unspecified, or one of its interfaces) is the same key, so that
    `localhost`, `::1` and `127.0.0.1` all name one server. No host is libpq's local socket."""
    keys = {host.lower()} if host else {_THIS_MACHINE}
    if host and host.lower() == "localhost":
        keys.add(_THIS_MACHINE)
    for address in addresses:
        for reached in _reached_addresses(ip_address(address)):
            local = reached.is_loopback or reached.is_unspecified or _is_own_address(reached)
            keys.add(_THIS_MACHINE if local else str(reached))
    return frozenset(keys)


def _database_of(url: URL, hosts: frozenset[str]) -> _Database:
    # libpq's defaults: the database is named after the user, the user after the OS user.
    name = url.database or url.username or _os_user()
    return _Database(hosts=hosts, port=url.port or POSTGRESQL_PORT, name=name)


def _protected(
    urls: Iterable[str], addresses_of: Callable[[str | None], list[str]]
) -> list[_Database]:
    return [
        _database_of(url, _host_keys(url.host, addresses_of(url.host)))
        for url in _postgresql_urls(urls)
    ]


def _postgresql_urls(urls: Iterable[str]) -> list[URL]:
    parsed = []
    for url in urls:
        try:
            candidate = make_url(url)
        except ArgumentError:
            continue
        if candidate.get_backend_name() in ("postgresql", "postgres"):
            parsed.append(candidate)
    return parsed


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


# --- EgressRefused -----------------------------------------------------------------------


class EgressRefused(PermanentError):
    """A connection the egress policy does not allow; permanent, so never retried."""


def _refused(message: str) -> EgressRefused:
    return EgressRefused(message)


# --- HTTP --------------------------------------------------------------------------------


class CheckedNetworkBackend(httpcore.NetworkBackend):
    """An httpcore backend that connects only where the policy allows, to exactly the
    address it checked. httpcore calls `connect_tcp` for every new connection, so every
    redirect hop is checked; TLS still verifies (and sends SNI for) the request's host name,
    which httpcore passes to `start_tls` itself."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._tcp = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        from connectors.errors import TransientError

        try:
            addresses = self._policy.resolve(host, port)
        except TransientError as exc:  # a DNS failure is a failed connection to httpx
            raise httpcore.ConnectError(str(exc)) from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._tcp.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve returns at least one address
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise _refused("connecting to a Unix socket is not allowed")

    def sleep(self, seconds: float) -> None:
        self._tcp.sleep(seconds)


class EgressTransport(httpx.HTTPTransport):
    """httpx's own transport, whose connection pool uses a `CheckedNetworkBackend`.

    Keeping `HTTPTransport` keeps its mapping of httpcore's exceptions to httpx's
    (ConnectError, TimeoutException, ...); it has no parameter for a network backend, so its
    pool is replaced by one built the same way with it. No proxy: the connection goes
    straight to the checked address. `EgressRefused` passes through httpcore and httpx as
    it is (neither maps exceptions they do not know).
    """

    def __init__(self, policy: EgressPolicy) -> None:
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, network_backend=CheckedNetworkBackend(policy)
        )


def egress_transport(policy: EgressPolicy) -> httpx.BaseTransport:
    """A transport for `httpx.Client(transport=..., trust_env=False)` obeying `policy`."""
    return EgressTransport(policy)
