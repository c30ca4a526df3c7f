"""The egress policy, tested as an attacker would use it: metadata and loopback addresses in
every spelling, redirects, DNS rebinding, the service's own database, libpq parameters."""

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from config import Settings
from connectors.base import Extract, RunContext
from connectors.egress import (
    LINK_LOCAL,
    LOOPBACK,
    PRIVATE,
    PROTECTED,
    EgressPolicy,
    EgressRefused,
    parse_networks,
    refuse_protected_database,
)
from connectors.errors import ConnectorError, PermanentError, TransientError
from connectors.registry import parse_destination, parse_source
from connectors.sql_engine import engine_for
from tests.connectors.http_server import LocalHttpServer, Reply, json_reply, serve
from tests.scratch_postgres import admin_url_or_skip

DAY = date(2024, 3, 1)
PATH = "/items/2024-03-01"
ROWS = [{"id": 1}]
PUBLIC_IP = "93.184.215.14"  # never really reached: the `connections` fixture refuses it

DEFAULT = EgressPolicy()
LOOPBACK_ALLOWED = EgressPolicy(allowed_networks=parse_networks(["127.0.0.0/8", "::1/128"]))
ONLY_127_0_0_1 = EgressPolicy(allowed_networks=parse_networks(["127.0.0.1/32"]))
EVERYTHING_ALLOWED = EgressPolicy(allowed_networks=parse_networks(["0.0.0.0/0", "::/0"]))

SERVICE_DB = "postgresql://postgres@127.0.0.1:5432/backfills"
GUARDED = EgressPolicy(
    allowed_networks=LOOPBACK_ALLOWED.allowed_networks, protected_databases=(SERVICE_DB,)
)


# --- helpers --------------------------------------------------------------------------------


def run_context(tmp_path: Path, policy: EgressPolicy) -> RunContext:
    return RunContext(team_dir=tmp_path, transfer_id=1, heartbeat=lambda: None, egress=policy)


def fetch(tmp_path: Path, url: str, policy: EgressPolicy, **options: Any) -> Extract:
    source = parse_source({"type": "http", "url": url, **options}).build()
    found = source.extract(DAY, run_context(tmp_path, policy))
    records = list(found.records)  # read to the end, as a destination reads them
    return Extract(records=records, query_details=found.query_details)


def fetch_failure(tmp_path: Path, url: str, policy: EgressPolicy, **options: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        fetch(tmp_path, url, policy, **options)
    return caught.value


def assert_refused(error: BaseException, kind: str) -> None:
    assert isinstance(error, EgressRefused)
    assert isinstance(error, PermanentError)
    assert not error.retryable
    assert kind in str(error)


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with serve() as running:
        yield running


@dataclass
class Listener:
    """A server on another loopback address (127.0.0.2) that only counts requests."""

    port: int = 0
    requests: list[str] = field(default_factory=list)


@contextmanager
def listen_on(host: str) -> Iterator[Listener]:
    state = Listener()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer((host, 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def other_loopback() -> Iterator[Listener]:
    with listen_on("127.0.0.2") as running:
        yield running


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection the HTTP stack opens; the public test address is refused here,
    so no test leaves the machine."""
    made: list[tuple[str, int]] = []
    real = socket.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        made.append((address[0], address[1]))
        if address[0] == PUBLIC_IP:
            raise ConnectionRefusedError(111, "Connection refused")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return made


@dataclass
class FakeDns:
    """Answers chosen names with scripted addresses (one list per lookup, the last one
    repeating); every other name and literal goes to the real getaddrinfo."""

    answers: dict[str, list[list[str]]]
    lookups: list[str] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "FakeDns":
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in self.answers:
                return real(host, port, *args, **kwargs)
            self.lookups.append(host)
            scripted = self.answers[host]
            addresses = scripted.pop(0) if len(scripted) > 1 else scripted[0]
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [info for a in addresses for info in real(a, port, *args, **kwargs)]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return self


# --- addresses ------------------------------------------------------------------------------


ALWAYS_REFUSED = [
    ("169.254.169.254", LINK_LOCAL),
    ("169.254.170.2", LINK_LOCAL),
    ("fe80::1", LINK_LOCAL),
    ("fd00:ec2::254", LINK_LOCAL),
    ("100.100.100.200", LINK_LOCAL),
    ("192.0.0.192", LINK_LOCAL),
    ("0.0.0.0", "an unspecified address"),
    ("0.1.2.3", "an unspecified address"),
    ("::", "an unspecified address"),
    ("224.0.0.1", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("255.255.255.255", "a broadcast address"),
    ("240.0.0.1", "a reserved address"),
]


@pytest.mark.parametrize(("address", "kind"), ALWAYS_REFUSED)
def test_some_addresses_are_refused_whatever_the_allowed_networks(address: str, kind: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        EVERYTHING_ALLOWED.check_address(address)

    assert_refused(caught.value, kind)


def teredo(server: str, client: str) -> str:
    obfuscated_client = ~int(IPv4Address(client)) & 0xFFFFFFFF
    return str(
        IPv6Address((0x20010000 << 96) | (int(IPv4Address(server)) << 64) | obfuscated_client)
    )


EMBEDDED_IPV4 = [
    ("::ffff:169.254.169.254", LINK_LOCAL),  # IPv4-mapped
    ("64:ff9b::a9fe:a9fe", LINK_LOCAL),  # NAT64 of 169.254.169.254
    ("2002:a9fe:a9fe::1", LINK_LOCAL),  # 6to4 of 169.254.169.254
    (teredo("8.8.8.8", "169.254.169.254"), LINK_LOCAL),
    ("::ffff:127.0.0.1", LOOPBACK),
    ("64:ff9b::7f00:1", LOOPBACK),  # Python calls this one global
    ("2002:7f00:1::", LOOPBACK),  # and this one too
    ("::ffff:10.0.0.1", PRIVATE),
]


@pytest.mark.parametrize(("address", "kind"), EMBEDDED_IPV4)
def test_an_ipv6_address_carrying_an_ipv4_one_is_checked_as_it(address: str, kind: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        DEFAULT.check_address(address)

    assert_refused(caught.value, kind)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", LOOPBACK),
        ("127.255.0.9", LOOPBACK),
        ("::1", LOOPBACK),
        ("10.0.0.1", PRIVATE),
        ("172.16.0.1", PRIVATE),
        ("192.168.1.1", PRIVATE),
        ("100.64.0.1", PRIVATE),  # CGNAT
        ("fc00::1", PRIVATE),
        ("192.0.2.1", PRIVATE),  # not global (documentation)
    ],
)
def test_loopback_and_private_addresses_are_refused_unless_allowed(address: str, kind: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        DEFAULT.check_address(address)
    assert_refused(caught.value, kind)
    assert "BACKFILLS_CONNECTOR_ALLOWED_NETWORKS" in str(caught.value)

    EVERYTHING_ALLOWED.check_address(address)


def test_an_allowed_network_opens_only_itself() -> None:
    ONLY_127_0_0_1.check_address("127.0.0.1")

    with pytest.raises(ConnectorError) as caught:
        ONLY_127_0_0_1.check_address("127.0.0.2")
    assert_refused(caught.value, LOOPBACK)


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"])
def test_global_addresses_are_allowed(address: str) -> None:
    DEFAULT.check_address(address)


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.1", "0177.0.0.1", "::1"])
def test_odd_spellings_of_loopback_are_refused(host: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        DEFAULT.resolve(host, 80)

    assert_refused(caught.value, LOOPBACK)
    assert f"connecting to {host} is not allowed: it is a loopback" in str(caught.value)
    if host != "::1":
        assert "127.0.0.1" not in str(caught.value)
    assert LOOPBACK_ALLOWED.resolve(host, 80) in (["127.0.0.1"], ["::1"])


def test_a_name_resolving_to_loopback_is_refused_without_naming_the_address() -> None:
    with pytest.raises(ConnectorError) as caught:
        DEFAULT.resolve("localhost", 80)

    assert_refused(caught.value, LOOPBACK)
    assert "connecting to localhost is not allowed: it resolves to a loopback" in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)
    assert "::1" not in str(caught.value)


def test_one_good_address_does_not_excuse_a_bad_one(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeDns({"mixed.test": [[PUBLIC_IP, "169.254.169.254"]]}).install(monkeypatch)

    with pytest.raises(ConnectorError) as caught:
        DEFAULT.resolve("mixed.test", 80)

    assert_refused(caught.value, LINK_LOCAL)
    assert "169.254" not in str(caught.value)
    assert PUBLIC_IP not in str(caught.value)


def test_every_checked_address_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeDns({"two.test": [[PUBLIC_IP, "8.8.8.8", PUBLIC_IP]]}).install(monkeypatch)

    assert DEFAULT.resolve("two.test", 443) == [PUBLIC_IP, "8.8.8.8"]


def test_a_name_that_does_not_resolve_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeDns({"nowhere.test": [[]]}).install(monkeypatch)

    with pytest.raises(TransientError, match=r"^could not resolve host nowhere\.test$"):
        DEFAULT.resolve("nowhere.test", 80)


def test_the_policy_comes_from_the_settings() -> None:
    settings = Settings(
        _env_file=None,
        database_url="postgresql://svc@db.internal/backfills",
        connector_allowed_networks="10.0.0.0/8, 127.0.0.1",
        protected_database_urls="postgresql://temporal@db.internal/temporal",
    )

    policy = EgressPolicy.from_settings(settings)

    assert [str(n) for n in policy.allowed_networks] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert policy.protected_databases == (
        "postgresql://svc@db.internal/backfills",
        "postgresql://temporal@db.internal/temporal",
    )
    assert hash(policy) == hash(EgressPolicy.from_settings(settings))


def test_an_allowed_network_that_is_not_a_cidr_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0/33' is not a network")):
        parse_networks(["10.0.0/33"])


# --- the http source ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/{data_date}", LINK_LOCAL),
        ("http://[::ffff:169.254.169.254]/latest/{data_date}", LINK_LOCAL),
        ("http://[fd00:ec2::254]/latest/{data_date}", LINK_LOCAL),
        ("http://100.100.100.200/latest/{data_date}", LINK_LOCAL),
    ],
)
def test_cloud_metadata_is_never_fetched(
    tmp_path: Path, connections: list[tuple[str, int]], url: str, kind: str
) -> None:
    error = fetch_failure(tmp_path, url, EVERYTHING_ALLOWED)

    assert_refused(error, kind)
    assert str(error).startswith("http source: connecting to ")
    assert [d.status for d in error.query_details or []] == ["FAILED"]
    assert connections == []


def test_0_0_0_0_is_refused_even_where_everything_is_allowed(
    server: LocalHttpServer, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    server.route(PATH, json_reply(ROWS))

    error = fetch_failure(
        tmp_path, f"http://0.0.0.0:{server.port}/items/{{data_date}}", EVERYTHING_ALLOWED
    )

    assert_refused(error, "an unspecified address")
    assert server.received == []
    assert connections == []


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.1", "[::1]", "localhost"])
def test_loopback_in_any_spelling_is_refused_by_default(
    server: LocalHttpServer, tmp_path: Path, connections: list[tuple[str, int]], host: str
) -> None:
    server.route(PATH, json_reply(ROWS))

    error = fetch_failure(tmp_path, f"http://{host}:{server.port}/items/{{data_date}}", DEFAULT)

    assert_refused(error, LOOPBACK)
    assert "127.0.0.1" not in str(error)
    assert server.received == []
    assert connections == []


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "localhost"])
def test_loopback_is_reached_where_the_allowed_networks_hold_it(
    server: LocalHttpServer, tmp_path: Path, host: str
) -> None:
    server.route(PATH, json_reply(ROWS))

    result = fetch(tmp_path, f"http://{host}:{server.port}/items/{{data_date}}", LOOPBACK_ALLOWED)

    assert result.records == ROWS
    assert len(server.requests_to(PATH)) == 1


def test_a_redirect_to_a_refused_address_is_not_followed(
    server: LocalHttpServer,
    other_loopback: Listener,
    tmp_path: Path,
    connections: list[tuple[str, int]],
) -> None:
    server.route(PATH, Reply(status=302, location=f"http://127.0.0.2:{other_loopback.port}/x"))

    error = fetch_failure(
        tmp_path, f"http://127.0.0.1:{server.port}/items/{{data_date}}", ONLY_127_0_0_1
    )

    assert_refused(error, LOOPBACK)
    assert "connecting to 127.0.0.2 is not allowed" in str(error)
    assert len(server.requests_to(PATH)) == 1
    assert other_loopback.requests == []
    assert connections == [("127.0.0.1", server.port)]


def test_the_same_redirect_is_followed_where_both_addresses_are_allowed(
    server: LocalHttpServer, other_loopback: Listener, tmp_path: Path
) -> None:
    """The counterpart of the test above: the second server is really there."""
    server.route(PATH, Reply(status=302, location=f"http://127.0.0.2:{other_loopback.port}/x"))

    fetch(tmp_path, f"http://127.0.0.1:{server.port}/items/{{data_date}}", LOOPBACK_ALLOWED)

    assert other_loopback.requests == ["/x"]


def test_a_redirect_to_cloud_metadata_is_not_followed(
    server: LocalHttpServer, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    server.route(PATH, Reply(status=307, location="http://169.254.169.254/latest/meta-data/"))

    error = fetch_failure(
        tmp_path, f"http://127.0.0.1:{server.port}/items/{{data_date}}", LOOPBACK_ALLOWED
    )

    assert_refused(error, LINK_LOCAL)
    assert connections == [("127.0.0.1", server.port)]


def test_at_most_five_redirects_are_followed(server: LocalHttpServer, tmp_path: Path) -> None:
    server.route(PATH, Reply(status=302, location=PATH))

    error = fetch_failure(
        tmp_path, f"http://127.0.0.1:{server.port}/items/{{data_date}}", LOOPBACK_ALLOWED
    )

    assert isinstance(error, PermanentError)
    assert "TooManyRedirects" in str(error)
    assert len(server.requests_to(PATH)) == 6


def test_dns_rebinding_cannot_move_the_connection(
    server: LocalHttpServer,
    tmp_path: Path,
    connections: list[tuple[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name answers a public address when checked, then loopback (where the server
    listens). A connection made by name, after the check, would reach the server."""
    server.route(PATH, json_reply(ROWS))
    dns = FakeDns({"rebind.test": [[PUBLIC_IP], ["127.0.0.1"]]}).install(monkeypatch)

    error = fetch_failure(
        tmp_path, f"http://rebind.test:{server.port}/items/{{data_date}}", DEFAULT
    )

    assert isinstance(error, TransientError)  # the public address refused the connection
    assert "could not connect to rebind.test" in str(error)
    assert connections == [(PUBLIC_IP, server.port)]
    assert dns.lookups == ["rebind.test"]
    assert server.received == []


def test_the_checked_address_is_used_and_the_host_name_kept(
    server: LocalHttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked as 127.0.0.1 (allowed); any later lookup would answer cloud metadata."""
    server.route(PATH, json_reply(ROWS))
    dns = FakeDns({"api.test": [["127.0.0.1"], ["169.254.169.254"]]}).install(monkeypatch)

    result = fetch(tmp_path, f"http://api.test:{server.port}/items/{{data_date}}", ONLY_127_0_0_1)

    assert result.records == ROWS
    assert dns.lookups == ["api.test"]
    [request] = server.requests_to(PATH)
    assert request.headers["Host"] == f"api.test:{server.port}"


def test_a_host_that_does_not_resolve_is_transient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeDns({"nowhere.test": [[]]}).install(monkeypatch)

    error = fetch_failure(tmp_path, "http://nowhere.test/{data_date}", DEFAULT)

    assert isinstance(error, TransientError)
    assert "could not resolve host nowhere.test" in str(error)


def test_no_proxy_from_the_environment_is_used(
    server: LocalHttpServer,
    other_loopback: Listener,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.route(PATH, json_reply(ROWS))
    proxy = f"http://127.0.0.2:{other_loopback.port}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    fetch(tmp_path, f"http://127.0.0.1:{server.port}/items/{{data_date}}", LOOPBACK_ALLOWED)

    assert len(server.requests_to(PATH)) == 1
    assert other_loopback.requests == []


# --- SQL connections ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        SERVICE_DB,
        "postgresql://postgres@127.0.0.1/backfills",  # default port
        "postgresql://someone:pw@localhost:5432/backfills",
        "postgresql+psycopg://postgres@LocalHost/backfills",
        "postgresql://postgres@[::1]:5432/backfills",
        "postgresql://postgres@127.1/backfills",
        "postgresql://postgres@2130706433/backfills",
        "postgres://postgres@127.0.0.1/backfills",
        "postgresql://backfills@127.0.0.1",  # no database: libpq uses the user's name
    ],
)
def test_the_services_own_database_is_refused(url: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        engine_for(url, GUARDED)

    assert_refused(caught.value, PROTECTED)
    assert "pw" not in str(caught.value)

    with pytest.raises(ValueError, match=re.escape(PROTECTED)):
        refuse_protected_database(url, GUARDED.protected_databases)


def test_a_name_resolving_to_the_services_database_host_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeDns({"warehouse.test": [["127.0.0.1"]]}).install(monkeypatch)

    with pytest.raises(ConnectorError) as caught:
        engine_for("postgresql://u@warehouse.test/backfills", GUARDED)

    assert_refused(caught.value, PROTECTED)


def test_a_protected_database_on_the_local_socket_is_protected_on_loopback() -> None:
    policy = EgressPolicy(
        allowed_networks=LOOPBACK_ALLOWED.allowed_networks,
        protected_databases=("postgresql:///backfills",),
    )

    with pytest.raises(ConnectorError) as caught:
        engine_for("postgresql://u@127.0.0.1/backfills", policy)

    assert_refused(caught.value, PROTECTED)


def test_another_database_or_port_is_not_the_services() -> None:
    engine_for("postgresql://postgres@127.0.0.1:5432/warehouse", GUARDED)
    engine_for("postgresql://postgres@127.0.0.1:5433/backfills", GUARDED)

    refuse_protected_database("postgresql://u@127.0.0.1/warehouse", GUARDED.protected_databases)
    refuse_protected_database("sqlite:///backfills.db", GUARDED.protected_databases)


def test_a_url_with_references_is_checked_at_run_time_only() -> None:
    refuse_protected_database("${WAREHOUSE_URL}", GUARDED.protected_databases)
    refuse_protected_database("postgresql://u:${PW}@localhost/backfills", (SERVICE_DB,))


@pytest.mark.parametrize(
    "query",
    [
        "host=/var/run/postgresql",
        "hostaddr=10.0.0.1",
        "service=prod",
        "passfile=/etc/passwd",
        "sslkey=/etc/ssl/private/key.pem",
        "sslcert=/etc/ssl/cert.pem",
        "sslrootcert=/etc/ssl/root.pem",
        "options=-c%20search_path%3Devil",
        "sslmode=require&port=5433",
    ],
)
def test_libpq_parameters_that_reach_sockets_or_files_are_refused(query: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        engine_for(f"postgresql://u@127.0.0.1/warehouse?{query}", LOOPBACK_ALLOWED)

    error = caught.value
    assert isinstance(error, EgressRefused)
    forbidden = next(p.split("=")[0] for p in query.split("&") if not p.startswith("sslmode"))
    assert f"the URL parameter(s) {forbidden} are not allowed" in str(error)
    assert "/etc" not in str(error)


def test_the_allowed_libpq_parameters_are_accepted() -> None:
    engine_for(
        "postgresql://u@127.0.0.1/warehouse?sslmode=prefer&connect_timeout=3"
        "&application_name=backfills&target_session_attrs=any",
        LOOPBACK_ALLOWED,
    )


@pytest.mark.parametrize(
    "url", ["postgresql:///warehouse", "postgresql://u@/warehouse", "postgresql://u:p@:5432/w"]
)
def test_a_postgresql_url_without_a_host_is_refused(url: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        engine_for(url, EVERYTHING_ALLOWED)

    assert_refused(caught.value, "the URL names no host")


def test_a_host_list_is_refused() -> None:
    """libpq would try each host; only one can be pinned."""
    with pytest.raises(ConnectorError) as caught:
        engine_for("postgresql://u@127.0.0.1,10.0.0.1/warehouse", EVERYTHING_ALLOWED)

    assert_refused(caught.value, "must be one host name or IP address")


@pytest.mark.parametrize(
    "url", ["mysql://u@db.example.com/app", "mssql+pyodbc://u@db/app", "oracle://u@db/app"]
)
def test_only_postgresql_and_sqlite_are_connector_databases(url: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        engine_for(url, EVERYTHING_ALLOWED)

    assert isinstance(caught.value, PermanentError)
    assert "not supported: a connector URL is postgresql:// or sqlite://" in str(caught.value)


def test_a_postgresql_driver_other_than_psycopg_is_refused() -> None:
    with pytest.raises(ConnectorError) as caught:
        engine_for("postgresql+pg8000://u@127.0.0.1/warehouse", EVERYTHING_ALLOWED)

    assert_refused(caught.value, "only the psycopg driver")


@pytest.mark.parametrize(
    ("host", "kind"),
    [("169.254.169.254", LINK_LOCAL), ("localhost", LOOPBACK), ("[::ffff:127.0.0.1]", LOOPBACK)],
)
def test_a_postgresql_host_is_checked_like_any_other(host: str, kind: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        engine_for(f"postgresql://u@{host}/warehouse", DEFAULT)

    assert_refused(caught.value, kind)
    assert f"connecting to {host.strip('[]')} is not allowed" in str(caught.value)
    assert "127.0.0.1" not in str(caught.value).replace(host.strip("[]"), "")


def test_the_check_runs_on_every_call_not_once_per_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeDns({"db.test": [["127.0.0.1"], ["127.0.0.1"], ["169.254.169.254"]]}).install(monkeypatch)
    url = "postgresql://u@db.test/warehouse"

    first = engine_for(url, LOOPBACK_ALLOWED)
    assert engine_for(url, LOOPBACK_ALLOWED) is first  # same checked address: same engine
    with pytest.raises(ConnectorError) as caught:
        engine_for(url, LOOPBACK_ALLOWED)

    assert_refused(caught.value, LINK_LOCAL)


def test_the_connection_is_pinned_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name resolves once (to the real server's 127.0.0.1); any other lookup fails, so
    the connection can only succeed by using the checked address."""
    admin = make_url(admin_url_or_skip())
    FakeDns({"warehouse.test": [["127.0.0.1"], []]}).install(monkeypatch)
    url = admin.set(host="warehouse.test").render_as_string(hide_password=False)

    with engine_for(url, LOOPBACK_ALLOWED).connect() as connection:
        server_address = connection.execute(text("SELECT host(inet_server_addr())")).scalar()
        info = connection.connection.driver_connection.info  # type: ignore[union-attr]

    assert server_address == "127.0.0.1"
    assert (info.host, info.hostaddr) == ("warehouse.test", "127.0.0.1")


def test_the_sql_source_refuses_before_connecting(tmp_path: Path) -> None:
    source = parse_source(
        {"type": "sql", "url": "postgresql://u:hunter2@localhost/w", "query": "SELECT :data_date"}
    ).build()

    with pytest.raises(ConnectorError) as caught:
        source.extract(DAY, run_context(tmp_path, DEFAULT))

    error = caught.value
    assert_refused(error, LOOPBACK)
    assert str(error).startswith("sql source: connecting to localhost is not allowed")
    assert "127.0.0.1" not in str(error)
    assert [d.status for d in error.query_details or []] == ["FAILED"]


def test_the_postgresql_destination_refuses_the_services_database(tmp_path: Path) -> None:
    sink = parse_destination(
        {"type": "postgresql", "url": "postgresql://postgres@localhost/backfills", "table": "t"}
    ).build()

    with pytest.raises(ConnectorError) as caught:
        sink.replace_partition(DAY, [{"a": 1}], run_context(tmp_path, GUARDED))

    assert_refused(caught.value, PROTECTED)
    assert str(caught.value).startswith("postgresql destination: ")
