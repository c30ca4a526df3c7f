"""`backfills dev` as a user runs it: a real process starting a real Temporal server, worker
and API on free ports. Its children never outlive it (SIGHUP stops them in order, a SIGKILL
of dev takes them down too), its output is readable text with each line prefixed by the part
that wrote it, and the worker's metrics listen on loopback, their URLs in the banner.

The processes and ports are read from /proc (Linux), as `ps` and `ss` would."""

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from cli.dev import dev_settings
from cli.devserver import free_port
from config import Settings
from tests.prometheus import scrape
from tests.support import REPO, wait_for

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads processes and sockets from /proc"
)

PORT_SETTINGS = (
    "BACKFILLS_API_PORT",
    "BACKFILLS_TEMPORAL_PORT",
    "BACKFILLS_TEMPORAL_UI_PORT",
    "BACKFILLS_WORKER_METRICS_PORT",
    "BACKFILLS_TEMPORAL_METRICS_PORT",
)
STARTUP_SECONDS = 120.0
WORKER_EXIT = "worker exited with"
_TCP_LISTEN = "0A"

Process = tuple[int, str]  # pid and start time: a pid reused by another process is not ours


def process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, start time) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited meanwhile
            continue
        fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
        table[int(entry.name)] = (int(fields[1]), fields[0], fields[19])
    return table


def descendants(pid: int) -> set[Process]:
    table = process_table()
    found: set[Process] = set()
    parents = {pid}
    while parents:
        children = {child for child, (ppid, _, _) in table.items() if ppid in parents}
        found |= {(child, table[child][2]) for child in children}
        parents = children
    return found


def alive(processes: set[Process]) -> set[Process]:
    """Those still running: a zombie has exited (whoever adopted it has yet to reap it)."""
    table = process_table()
    return {
        (pid, start)
        for pid, start in processes
        if pid in table and table[pid][2] == start and table[pid][1] != "Z"
    }


def listening_addresses(port: int) -> set[str]:
    """The local addresses TCP sockets listen on at `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == _TCP_LISTEN and int(hex_port, 16) == port:
                found.add(_ip(address))
    return found


def _ip(hex_address: str) -> str:
    if len(hex_address) == 8:  # IPv4, in host (little-endian) order
        return ".".join(str(int(hex_address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return hex_address  # IPv6: only compared, never read


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def wait_until_gone(processes: set[Process], *, timeout: float) -> None:
    try:
        wait_for(lambda: not alive(processes), timeout=timeout)
    except AssertionError:
        still = [command_line(pid) for pid, _ in alive(processes)]
        raise AssertionError(f"still running after {timeout}s: {still}") from None


@dataclass
class Dev:
    process: subprocess.Popen[bytes]
    output_file: Path
    ports: dict[str, int]
    seen: set[Process] = field(default_factory=set)

    @property
    def api_port(self) -> int:
        return self.ports["BACKFILLS_API_PORT"]

    def output(self) -> str:
        return self.output_file.read_text(errors="replace")

    def children(self) -> set[Process]:
        """Every process under dev now; remembered, so the fixture can clean up after it."""
        found = descendants(self.process.pid)
        self.seen |= found
        return found

    def ports_in_use(self) -> dict[str, set[str]]:
        in_use = {name: listening_addresses(port) for name, port in self.ports.items()}
        return {name: addresses for name, addresses in in_use.items() if addresses}

    def wait_until_ports_free(self, *, timeout: float) -> None:
        try:
            wait_for(lambda: not self.ports_in_use(), timeout=timeout)
        except AssertionError:
            raise AssertionError(f"still listening: {self.ports_in_use()}") from None

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"dev exited with {self.process.returncode}:\n{self.output()}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.api_port}/readyz", timeout=2).is_success
        except httpx.HTTPError:
            return False


@contextmanager
def signals_at_default() -> Iterator[None]:
    """A child inherits ignored signals. Should this test run under nohup (SIGHUP ignored) or
    in a background job (SIGINT ignored), dev would rightly keep ignoring them; give it what
    a terminal gives it instead."""
    ignored = [s for s in (signal.SIGINT, signal.SIGHUP) if signal.getsignal(s) == signal.SIG_IGN]
    for signum in ignored:
        signal.signal(signum, signal.SIG_DFL)
    try:
        yield
    finally:
        for signum in ignored:
            signal.signal(signum, signal.SIG_IGN)


def start_dev(directory: Path, **ports: int) -> Dev:
    """`backfills dev` in a directory of its own (no `.env`), with only what a user would set:
    free ports (or those given) and a data dir."""
    ports = {name: ports.get(name) or free_port() for name in PORT_SETTINGS}
    env = {key: value for key, value in os.environ.items() if not key.startswith("BACKFILLS_")}
    env |= {name: str(port) for name, port in ports.items()}
    env |= {"BACKFILLS_DATA_DIR": str(directory / "data"), "PYTHONPATH": str(REPO)}
    output_file = directory / "dev.out"
    with signals_at_default(), output_file.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "dev"],
            env=env,
            cwd=directory,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal's foreground job: its own process group
        )
    return Dev(process=process, output_file=output_file, ports=ports)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    """A running `backfills dev`, once its API answers /readyz."""
    running = start_dev(tmp_path)
    try:
        wait_for(running.ready, timeout=STARTUP_SECONDS)
        yield running
    finally:
        _clean_up(running)


def _clean_up(dev: Dev) -> None:
    """Whatever a failing test leaves running, so that no later test meets its ports."""
    if dev.process.poll() is None:
        dev.children()
        dev.process.kill()
        dev.process.wait()
    for pid, _ in alive(dev.seen):
        with suppress(ProcessLookupError):  # it exited meanwhile
            os.kill(pid, signal.SIGKILL)


def stack_of(dev: Dev) -> set[Process]:
    """Temporal, the worker and the API, once all three run under dev."""
    found: set[Process] = wait_for(lambda: dev.children() if len(dev.children()) >= 3 else None)
    return found


def test_sighup_stops_the_stack_in_order_and_leaves_no_process_or_port(dev: Dev) -> None:
    children = stack_of(dev)

    dev.process.send_signal(signal.SIGHUP)  # what closing the terminal sends

    assert dev.process.wait(timeout=120) == 0, dev.output()
    wait_until_gone(children, timeout=60)
    dev.wait_until_ports_free(timeout=30)
    # The worker was stopped, not killed: it drained and said so.
    assert "worker | " in dev.output() and "worker stopped" in dev.output()


def test_sigkill_of_dev_takes_its_children_down(dev: Dev) -> None:
    children = stack_of(dev)

    dev.process.kill()
    dev.process.wait()

    wait_until_gone(children, timeout=60)
    dev.wait_until_ports_free(timeout=30)


def is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def test_output_is_text_lines_prefixed_with_the_part_that_wrote_them(dev: Dev) -> None:
    wait_for(lambda: "worker polling task queue" in dev.output(), timeout=60)

    dev.process.send_signal(signal.SIGINT)  # Ctrl-C

    assert dev.process.wait(timeout=120) == 0, dev.output()
    lines = dev.output().splitlines()
    assert any(line.startswith("api    | ") for line in lines), lines
    assert any(line.startswith("worker | ") for line in lines), lines
    for line in lines:
        assert not is_json_object(line), line
        assert not is_json_object(line.partition(" | ")[2]), line
    # What the worker wrote as it exited was relayed before dev exited.
    assert any(line.startswith("worker | ") and "worker stopped" in line for line in lines)


def test_worker_metrics_listen_on_loopback_and_the_banner_names_every_metrics_url(
    dev: Dev,
) -> None:
    worker_port = dev.ports["BACKFILLS_WORKER_METRICS_PORT"]
    sdk_port = dev.ports["BACKFILLS_TEMPORAL_METRICS_PORT"]
    wait_for(lambda: scrape(f"http://127.0.0.1:{worker_port}/metrics"), timeout=60)
    wait_for(lambda: scrape(f"http://127.0.0.1:{sdk_port}/metrics"), timeout=60)

    assert listening_addresses(worker_port) == {"127.0.0.1"}
    assert listening_addresses(sdk_port) == {"127.0.0.1"}
    banner = dev.output().partition("backfills dev is up:")[2]
    for url in (
        f"http://127.0.0.1:{dev.api_port}/metrics",
        f"http://127.0.0.1:{worker_port}/metrics",
        f"http://127.0.0.1:{sdk_port}/metrics",
    ):
        assert url in banner, banner


def test_dev_defaults_give_way_to_what_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKFILLS_LOG_FORMAT", raising=False)
    monkeypatch.delenv("BACKFILLS_METRICS_HOST", raising=False)
    unset = dev_settings(Settings(_env_file=None))
    assert (unset.log_format, unset.metrics_host) == ("text", "127.0.0.1")

    monkeypatch.setenv("BACKFILLS_LOG_FORMAT", "json")
    monkeypatch.setenv("BACKFILLS_METRICS_HOST", "0.0.0.0")
    chosen = dev_settings(Settings(_env_file=None))
    assert (chosen.log_format, chosen.metrics_host) == ("json", "0.0.0.0")


def test_a_worker_metrics_port_taken_stops_dev_loudly(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        dev = start_dev(tmp_path, BACKFILLS_WORKER_METRICS_PORT=port)
        try:
            returncode = dev.process.wait(timeout=STARTUP_SECONDS)
        finally:
            _clean_up(dev)

    lines = dev.output().splitlines()
    complaint = next(i for i, line in enumerate(lines) if f"listen on 127.0.0.1:{port}" in line)
    assert lines[complaint].startswith("worker | backfills worker: "), lines[complaint]
    assert "BACKFILLS_WORKER_METRICS_PORT" in lines[complaint]
    assert f"{WORKER_EXIT} 1; stopping the rest" in "\n".join(lines[complaint:])
    assert returncode == 1
