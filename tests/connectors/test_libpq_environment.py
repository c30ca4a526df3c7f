"""A tenant's PostgreSQL URL never gets the worker's own credentials from libpq's defaults:
not `PGPASSWORD`, not a password file, not a service file's password. The attacker points
its connector at a server it runs (here, a fake one on loopback that asks for a cleartext
password, as any server may) and reads what the worker sends."""

import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.exc import DBAPIError

from connectors.egress import EgressPolicy, parse_networks
from connectors.sql_engine import engine_for

LOOPBACK_ALLOWED = EgressPolicy(allowed_networks=parse_networks(["127.0.0.0/8"]))
WORKER_PASSWORD = "the-workers-own-password"


@dataclass
class PasswordThief:
    """A server that answers every connection with "send your password in clear text" and
    keeps what it gets, then hangs up."""

    port: int = 0
    received: list[str] = field(default_factory=list)

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with closing(client):
                self._steal(client)

    def _steal(self, client: socket.socket) -> None:
        client.settimeout(5)
        try:
            length = struct.unpack("!I", _read(client, 4))[0]
            startup = _read(client, length - 4)
            if struct.unpack("!I", startup[:4])[0] == 80877103:  # SSLRequest: no TLS here
                client.sendall(b"N")
                length = struct.unpack("!I", _read(client, 4))[0]
                _read(client, length - 4)
            client.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
            kind = _read(client, 1)
            length = struct.unpack("!I", _read(client, 4))[0]
            body = _read(client, length - 4)
            if kind == b"p":
                self.received.append(body.rstrip(b"\0").decode(errors="replace"))
        except (OSError, struct.error):
            return


def _read(client: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = client.recv(count - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


@pytest.fixture
def thief() -> Iterator[PasswordThief]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stealing = PasswordThief(port=listener.getsockname()[1])
    threading.Thread(target=stealing.serve, args=(listener,), daemon=True).start()
    try:
        yield stealing
    finally:
        listener.close()


def try_to_connect(url: str) -> None:
    engine = engine_for(url, LOOPBACK_ALLOWED)
    with pytest.raises(DBAPIError):
        engine.connect().close()
    engine.dispose()


def test_the_workers_pgpassword_is_never_sent_to_a_tenants_server(
    thief: PasswordThief, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", WORKER_PASSWORD)
    try_to_connect(f"postgresql://postgres@127.0.0.1:{thief.port}/warehouse")

    assert thief.received, "the fake server should have been asked for a password"
    assert WORKER_PASSWORD not in thief.received


def test_the_workers_password_files_are_never_read_for_a_tenants_server(
    thief: PasswordThief, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:*:{WORKER_PASSWORD}\n")
    passfile.chmod(0o600)
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[warehouse]\npassword={WORKER_PASSWORD}\n")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.setenv("PGSERVICE", "warehouse")
    try_to_connect(f"postgresql://postgres@127.0.0.1:{thief.port}/warehouse")

    assert WORKER_PASSWORD not in thief.received


def test_a_tenants_own_password_is_what_its_server_gets(
    thief: PasswordThief, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", WORKER_PASSWORD)
    try_to_connect(f"postgresql://postgres:tenant-pass@127.0.0.1:{thief.port}/warehouse")

    assert thief.received == ["tenant-pass"]


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate and its key for `name`, as PEM files in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class CertificateCollector:
    """A TLS server that asks every client for its certificate and keeps what it gets."""

    context: ssl.SSLContext
    port: int = 0
    received: list[bytes | None] = field(default_factory=list)

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with closing(client):
                client.settimeout(5)
                try:
                    length = struct.unpack("!I", _read(client, 4))[0]
                    _read(client, length - 4)  # the SSLRequest
                    client.sendall(b"S")
                    with self.context.wrap_socket(client, server_side=True) as tls:
                        self.received.append(tls.getpeercert(binary_form=True))
                except (OSError, struct.error, ssl.SSLError):
                    continue


@dataclass(frozen=True)
class WorkerCertificate:
    cert: Path
    key: Path


@pytest.fixture
def worker_certificate(tmp_path: Path) -> WorkerCertificate:
    """A client certificate the worker holds for its own databases."""
    return WorkerCertificate(*self_signed(tmp_path, "backfills-worker"))


@pytest.fixture
def collector(
    tmp_path: Path, worker_certificate: WorkerCertificate
) -> Iterator[CertificateCollector]:
    cert, key = self_signed(tmp_path, "tenant-server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_OPTIONAL  # asks for a client certificate
    context.load_verify_locations(worker_certificate.cert)  # so Python lets the server read it
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    collecting = CertificateCollector(context=context, port=listener.getsockname()[1])
    threading.Thread(target=collecting.serve, args=(listener,), daemon=True).start()
    try:
        yield collecting
    finally:
        listener.close()


def test_the_workers_client_certificate_is_never_offered_to_a_tenants_server(
    collector: CertificateCollector,
    worker_certificate: WorkerCertificate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGSSLCERT", str(worker_certificate.cert))
    monkeypatch.setenv("PGSSLKEY", str(worker_certificate.key))
    try_to_connect(f"postgresql://postgres:p@127.0.0.1:{collector.port}/warehouse?sslmode=require")

    assert collector.received == [None]  # the TLS handshake was made, with no certificate


def test_the_workers_kerberos_credentials_are_never_tried_on_a_tenants_server() -> None:
    """A server asking for GSSAPI gets a refusal: libpq never reaches for the worker's ticket
    cache (without the rule it does: "No Kerberos credentials available (default cache: …)")."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def ask_for_gssapi() -> None:
        client, _ = listener.accept()
        with closing(client):
            length = struct.unpack("!I", _read(client, 4))[0]
            _read(client, length - 4)
            client.sendall(b"R" + struct.pack("!II", 8, 7))  # AuthenticationGSS
            client.recv(1)

    threading.Thread(target=ask_for_gssapi, daemon=True).start()
    port = listener.getsockname()[1]
    engine = engine_for(
        f"postgresql://postgres:p@127.0.0.1:{port}/warehouse?sslmode=disable", LOOPBACK_ALLOWED
    )
    with closing(listener), pytest.raises(DBAPIError) as refused:
        engine.connect().close()
    engine.dispose()

    assert "server requested GSSAPI authentication" in str(refused.value)
    assert "Kerberos" not in str(refused.value)
