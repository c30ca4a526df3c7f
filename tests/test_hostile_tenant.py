"""A hostile team against a second team and the service itself, on the real stack.

The attacker is an owner of its own team with both scopes: everything its connector options,
secrets and API calls can reach. The stack here runs as production does: the worker allows
no worker variable in `${NAME}` and refuses loopback and private addresses (the shared test
stack allows loopback for its local sources). After each attack the victim's runs, rows and
secrets are as they were, the service's files are unchanged, and the service still answers.
"""

import hashlib
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from cli.devserver import free_port
from connectors.egress import PROTECTED
from connectors.warehouse import team_dir
from tests.connectors.http_server import LocalHttpServer, json_reply, serve
from tests.support import Stack, Tenant, all_runs, answers, assert_error, new_tenant, running_stack

DAY = "2024-06-01"
VICTIM_SECRET = "victim-token-77c1e0"
ATTACKER_SECRET = "attacker-token-3a9d5b"
SERVICE_FILES = ("backfills.db", "temporal.db", "secrets.key")


@dataclass
class Victim:
    tenant: Tenant
    transfer_id: int
    warehouse: Path


@pytest.fixture(scope="module")
def hostile_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """An API and a worker of their own (own task queue) on the shared database and Temporal,
    with the production defaults for egress and the worker's environment. Its data directory
    holds files named like the service's own, as `backfills dev` lays them out."""
    root = tmp_path_factory.mktemp("hostile")
    data_dir = root / "data"
    _service_files(data_dir)
    port = free_port()
    env = {
        **stack.env,
        "BACKFILLS_DATA_DIR": str(data_dir),
        "BACKFILLS_TASK_QUEUE": f"hostile-{uuid.uuid4().hex[:8]}",
        "BACKFILLS_API_PORT": str(port),
        "BACKFILLS_CONNECTOR_ALLOWED_NETWORKS": "",
        "BACKFILLS_WORKER_ENV_ALLOWLIST": "",
    }
    with running_stack(env, root) as hostile:
        yield hostile


def _service_files(data_dir: Path) -> None:
    """Stand-ins for the files of the service in a data directory: a SQLite database with a
    token table, a Temporal database and a secrets key file."""
    data_dir.mkdir(parents=True)
    for name in SERVICE_FILES[:2]:
        with closing(sqlite3.connect(data_dir / name)) as connection, connection:
            connection.execute("CREATE TABLE transfer_runs (data_date TEXT, token_hash TEXT)")
            connection.execute(f"INSERT INTO transfer_runs VALUES ('{DAY}', 'hash-of-{name}')")
    (data_dir / SERVICE_FILES[2]).write_text("not-a-real-key\n")


@pytest.fixture(scope="module")
def victim(hostile_stack: Stack) -> Iterator[Victim]:
    """A team with a secret and a completed backfill whose rows are in its warehouse."""
    tenant = new_tenant(hostile_stack)
    put_secret(tenant, "API_KEY", VICTIM_SECRET)
    transfer_id = tenant.create_transfer()
    created = tenant.create_backfill(transfer_id, DAY, DAY)
    done = tenant.wait_until_status(created["transfer_backfill_id"], "COMPLETED", timeout=120)
    assert done["status"] == "COMPLETED"
    warehouse = team_dir(hostile_stack.data_dir, tenant.team_id) / "warehouse.db"
    yield Victim(tenant=tenant, transfer_id=transfer_id, warehouse=warehouse)
    tenant.http.close()


@pytest.fixture(scope="module")
def attacker(hostile_stack: Stack) -> Iterator[Tenant]:
    tenant = new_tenant(hostile_stack)
    yield tenant
    tenant.http.close()


@pytest.fixture
def untouched(hostile_stack: Stack, victim: Victim, attacker: Tenant) -> Iterator[None]:
    """Asserts, after the test, that nothing of the victim or the service changed, that no
    secret value reached a response or a log line, and that the service still answers."""
    before = _snapshot(hostile_stack, victim)
    yield
    assert _snapshot(hostile_stack, victim) == before
    assert answers(hostile_stack.api_url.removesuffix("/v1") + "/readyz")
    logs = "".join(path.read_text(errors="replace") for path in hostile_stack.logs.glob("*.log"))
    assert VICTIM_SECRET not in logs
    assert ATTACKER_SECRET not in logs


def _snapshot(stack: Stack, victim: Victim) -> dict[str, Any]:
    records = [
        (run.id, run.status, run.data_date, run.message, run.total_rows, run.ended_time)
        for run in all_runs(stack.db, victim.tenant.team_id, victim.transfer_id)
    ]
    with closing(sqlite3.connect(victim.warehouse)) as connection:
        rows = connection.execute(f"SELECT * FROM transfer_{victim.transfer_id}").fetchall()
    secret = victim.tenant.http.get(f"/teams/{victim.tenant.team_id}/secrets/API_KEY")
    files = {
        name: hashlib.sha256((stack.data_dir / name).read_bytes()).hexdigest()
        for name in SERVICE_FILES
    }
    return {
        "records": records,
        "rows": sorted(rows),
        "secret": secret.json()["data"],
        "files": files,
    }


def put_secret(tenant: Tenant, name: str, value: str) -> None:
    response = tenant.http.put(f"/teams/{tenant.team_id}/secrets/{name}", json={"value": value})
    assert response.status_code == 200, response.text


def save(tenant: Tenant, source: dict[str, Any], destination: dict[str, Any]) -> httpx.Response:
    return tenant.http.post(
        f"/teams/{tenant.team_id}/transfers",
        json={"display_name": "attack", "source": source, "destination": destination},
    )


def run_one_day(
    tenant: Tenant, source: dict[str, Any], destination: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Save the transfer, backfill DAY to its end; the run as the API shows it."""
    response = save(tenant, source, destination or {"type": "sqlite"})
    assert response.status_code == 200, response.text
    transfer_id = response.json()["data"]["transfer_id"]
    created = tenant.create_backfill(transfer_id, DAY, DAY)
    tenant.wait_until_status(created["transfer_backfill_id"], "COMPLETED", "FAILED", timeout=120)
    [run] = tenant.runs(transfer_id)
    return run


def assert_refused_at_save(response: httpx.Response, field: str) -> None:
    error = assert_error(response, 422, "UNPROCESSABLE_ENTITY")
    assert field in error["message"]


def assert_reveals_nothing(stack: Stack, run: dict[str, Any]) -> None:
    """What a failed run says holds no path of the machine, no service URL and no SQL of ours."""
    shown = str(run)
    assert str(stack.data_dir) not in shown
    assert str(Path(stack.data_dir).parent) not in shown
    assert make_url(stack.database_url).render_as_string(hide_password=False) not in shown
    assert "transfer_runs" not in shown


# --- the embedded warehouse ---------------------------------------------------------------


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(
    "path",
    [
        "../../backfills.db",
        "../../temporal.db",
        "..",
        ".",
        "teams/../../../backfills.db",
        "~/backfills.db",
        "..\\..\\backfills.db",
        "warehouse.db\0",
        "file:warehouse.db?mode=rwc",
        "warehouse.db?uri=true",
        "x" * 300,
    ],
)
def test_a_sqlite_destination_outside_the_teams_directory_is_refused_when_saved(
    attacker: Tenant, victim: Victim, path: str
) -> None:
    response = save(attacker, {"type": "demo"}, {"type": "sqlite", "path": path})

    assert_refused_at_save(response, "destination.path")


@pytest.mark.usefixtures("untouched")
def test_absolute_paths_of_the_service_and_the_victim_are_refused_when_saved(
    hostile_stack: Stack, attacker: Tenant, victim: Victim
) -> None:
    for target in (hostile_stack.data_dir / "backfills.db", victim.warehouse):
        response = save(attacker, {"type": "demo"}, {"type": "sqlite", "path": str(target)})
        assert_refused_at_save(response, "destination.path")
    victims_dir = f"../{victim.tenant.team_id}/warehouse.db"
    response = save(attacker, {"type": "demo"}, {"type": "sqlite", "path": victims_dir})
    assert_refused_at_save(response, "destination.path")


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(
    ("path", "table"), [("backfills.db", "transfer_runs"), ("temporal.db", "transfer_runs")]
)
def test_names_of_the_services_files_are_files_of_the_attackers_own_directory(
    hostile_stack: Stack, attacker: Tenant, victim: Victim, path: str, table: str
) -> None:
    run = run_one_day(attacker, {"type": "demo"}, {"type": "sqlite", "path": path, "table": table})

    assert run["status"] == "COMPLETED", run
    own = team_dir(hostile_stack.data_dir, attacker.team_id) / path
    with closing(sqlite3.connect(own)) as connection:
        assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (
            run["total_rows"],
        )


@pytest.mark.usefixtures("untouched")
def test_the_victims_table_name_reaches_only_the_attackers_own_warehouse(
    hostile_stack: Stack, attacker: Tenant, victim: Victim
) -> None:
    victims_table = f"transfer_{victim.transfer_id}"

    run = run_one_day(attacker, {"type": "demo"}, {"type": "sqlite", "table": victims_table})

    assert run["status"] == "COMPLETED", run
    own = team_dir(hostile_stack.data_dir, attacker.team_id) / "warehouse.db"
    with closing(sqlite3.connect(own)) as connection:
        assert connection.execute(f"SELECT count(*) FROM {victims_table}").fetchone()[0] > 0


# --- the sql source and the service's databases -------------------------------------------


@pytest.mark.usefixtures("untouched")
def test_a_sql_source_naming_a_file_of_the_service_or_the_victim_is_refused_when_saved(
    hostile_stack: Stack, attacker: Tenant, victim: Victim
) -> None:
    query = "SELECT * FROM transfer_runs WHERE data_date = :data_date"
    for url in (
        f"sqlite:///{hostile_stack.data_dir / 'backfills.db'}",
        f"sqlite:///{victim.warehouse}",
        "sqlite:///../../backfills.db",
        f"sqlite:///../{victim.tenant.team_id}/warehouse.db",
        "sqlite:///warehouse.db?uri=true",
        "sqlite:///file:../../backfills.db?mode=ro&uri=true",
    ):
        response = save(attacker, {"type": "sql", "url": url, "query": query}, {"type": "sqlite"})
        assert_refused_at_save(response, "source.url")


@pytest.mark.usefixtures("untouched")
def test_the_services_own_database_is_refused_when_saved(
    hostile_stack: Stack, attacker: Tenant, victim: Victim
) -> None:
    if hostile_stack.database_url.startswith("sqlite"):
        pytest.skip("a sqlite: service database is an absolute path, refused as one above")
    url = hostile_stack.database_url
    source = {"type": "sql", "url": url, "query": "SELECT :data_date AS d"}

    as_source = save(attacker, source, {"type": "sqlite"})
    destination = {"type": "postgresql", "url": url, "table": "stolen"}
    as_destination = save(attacker, {"type": "demo"}, destination)

    assert_refused_at_save(as_source, PROTECTED)
    assert_refused_at_save(as_destination, PROTECTED)


@pytest.mark.usefixtures("untouched")
def test_a_secret_cannot_smuggle_a_service_file_in_at_run_time(
    hostile_stack: Stack, attacker: Tenant, victim: Victim
) -> None:
    put_secret(attacker, "STOLEN_URL", f"sqlite:///{hostile_stack.data_dir / 'backfills.db'}")
    source = {
        "type": "sql",
        "url": "${STOLEN_URL}",
        "query": "SELECT * FROM transfer_runs WHERE data_date = :data_date",
    }

    run = run_one_day(attacker, source)

    assert run["status"] == "FAILED"
    assert "team's directory" in run["message"]
    assert_reveals_nothing(hostile_stack, run)


def test_a_secret_cannot_smuggle_the_services_postgresql_database_in_at_run_time(
    stack: Stack, tenant: Tenant
) -> None:
    """On the shared stack, which allows loopback: so the protected-database check, not the
    network policy, is what refuses it."""
    if stack.database_url.startswith("sqlite"):
        pytest.skip("the service database is PostgreSQL on the other parameter")
    put_secret(tenant, "DB_URL", stack.database_url)
    source = {"type": "sql", "url": "${DB_URL}", "query": "SELECT :data_date AS d"}

    run = run_one_day(tenant, source)

    assert run["status"] == "FAILED"
    assert PROTECTED in run["message"]
    assert_reveals_nothing(stack, run)


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(
    "query",
    [
        # ATTACH with the path spliced in through the one bind the query must use
        "ATTACH DATABASE replace(:data_date, :data_date, '{service}') AS stolen",
        "VACUUM INTO replace(:data_date, :data_date, '{copy}')",
        "SELECT * FROM pragma_database_list WHERE :data_date IS NOT NULL",
        "SELECT load_extension(replace(:data_date, :data_date, '{service}'))",
    ],
)
def test_a_sqlite_source_query_reads_its_own_file_and_nothing_else(
    hostile_stack: Stack, attacker: Tenant, victim: Victim, query: str
) -> None:
    """The attacker's own warehouse is a file it may read; from there it tries to reach out."""
    seeded = run_one_day(attacker, {"type": "demo"}, {"type": "sqlite", "path": "mine.db"})
    assert seeded["status"] == "COMPLETED"
    copy = team_dir(hostile_stack.data_dir, attacker.team_id).parent / "copy.db"
    sql = query.format(service=hostile_stack.data_dir / "backfills.db", copy=copy)

    run = run_one_day(attacker, {"type": "sql", "url": "sqlite:///mine.db", "query": sql})

    assert run["status"] == "FAILED"
    assert "may only read its own file" in run["message"]
    assert not copy.exists()
    assert_reveals_nothing(hostile_stack, run)


# --- the network --------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[LocalHttpServer]:
    """A server on this machine's loopback: the API, Temporal or a metrics port stand-in."""
    with serve() as running:
        running.route(f"/{DAY}", json_reply([{"internal": "answer"}]))
        yield running


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("127.1", "loopback"),
        ("2130706433", "loopback"),
        ("0x7f000001", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("[::]", "unspecified"),
        ("169.254.169.254", "cloud-metadata"),
        ("[fd00:ec2::254]", "cloud-metadata"),
        ("10.0.0.1", "private"),
    ],
)
def test_the_http_source_reaches_no_address_of_the_service_side(
    hostile_stack: Stack,
    attacker: Tenant,
    victim: Victim,
    listener: LocalHttpServer,
    host: str,
    kind: str,
) -> None:
    put_secret(attacker, "KEY", ATTACKER_SECRET)
    url = f"http://{host}:{listener.port}/{{data_date}}?key=${{KEY}}"

    run = run_one_day(attacker, {"type": "http", "url": url, "timeout_s": 5})

    assert run["status"] == "FAILED"
    assert kind in run["message"]
    assert "internal" not in run["message"]
    assert listener.received == []
    assert ATTACKER_SECRET not in str(run)


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/postgres",
        "postgresql://postgres@localhost/postgres",
        "postgresql://postgres@/postgres",
        "postgresql://postgres@/postgres?host=/var/run/postgresql",
        "postgresql://postgres@example.com/postgres?hostaddr=127.0.0.1",
        "postgresql://postgres@example.com/postgres?service=local",
        "postgresql://postgres@127.0.0.1,example.com/postgres",
        "mysql://root@127.0.0.1/mysql",
    ],
)
def test_a_sql_source_reaches_no_database_of_this_machine(
    hostile_stack: Stack, attacker: Tenant, victim: Victim, url: str
) -> None:
    source = {"type": "sql", "url": url, "query": "SELECT :data_date AS d, current_user AS u"}

    response = save(attacker, source, {"type": "sqlite"})
    if response.status_code == 422:
        assert_refused_at_save(response, "source.url")
        return
    run = run_one_day(attacker, source)

    assert run["status"] == "FAILED"
    assert run["total_rows"] == 0
    refusals = ("not allowed", "not supported", "must be one host name")
    assert any(refusal in run["message"] for refusal in refusals), run["message"]
    assert_reveals_nothing(hostile_stack, run)


# --- secrets and the worker's environment -------------------------------------------------


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(
    "name",
    [
        "API_KEY",  # the victim's secret
        "BACKFILLS_DATABASE_URL",
        "BACKFILLS_SECRETS_KEY",
        "BACKFILLS_TEST_PG_PASSWORD",  # allowlisted on the shared stack, not here
        "PATH",
    ],
)
def test_the_victims_secrets_and_the_workers_variables_resolve_for_nobody_else(
    hostile_stack: Stack, attacker: Tenant, victim: Victim, name: str
) -> None:
    source = {
        "type": "http",
        "url": "https://example.com/{data_date}",
        "headers": {"X": f"${{{name}}}"},
    }

    run = run_one_day(attacker, source)

    assert run["status"] == "FAILED"
    assert run["message"].startswith(f"${{{name}}} is neither a secret of the team")
    assert hostile_stack.env.get(name, "\0") not in str(run)


@pytest.mark.usefixtures("untouched")
def test_the_victims_secrets_are_out_of_reach_over_the_api(
    attacker: Tenant, victim: Victim
) -> None:
    base = f"/teams/{victim.tenant.team_id}/secrets"
    answers = [
        attacker.http.get(base),
        attacker.http.get(f"{base}/API_KEY"),
        attacker.http.put(f"{base}/API_KEY", json={"value": "replaced"}),
        attacker.http.delete(f"{base}/API_KEY"),
        attacker.http.put(f"{base}/NEW", json={"value": "planted"}),
    ]

    assert [answer.status_code for answer in answers] == [403] * len(answers)
    assert all(answer.json()["error"]["code"] == "FORBIDDEN" for answer in answers)
    names = [s["name"] for s in victim.tenant.http.get(base).json()["data"]]
    assert names == ["API_KEY"]


@pytest.mark.usefixtures("untouched")
def test_a_secrets_value_is_never_expanded_again(
    hostile_stack: Stack, attacker: Tenant, victim: Victim
) -> None:
    """A secret whose value is itself a reference stays that text: no second pass."""
    put_secret(attacker, "INDIRECT", "${BACKFILLS_DATABASE_URL}")
    source = {"type": "sql", "url": "${INDIRECT}", "query": "SELECT :data_date AS d"}

    run = run_one_day(attacker, source)

    assert run["status"] == "FAILED"
    assert hostile_stack.env["BACKFILLS_DATABASE_URL"] not in str(run)
    assert_reveals_nothing(hostile_stack, run)


@pytest.mark.usefixtures("untouched")
def test_the_victims_records_are_out_of_reach_over_the_api(
    attacker: Tenant, victim: Victim
) -> None:
    team, transfer = victim.tenant.team_id, victim.transfer_id
    answers = [
        attacker.http.get(f"/teams/{team}/transfers"),
        attacker.http.get(f"/teams/{team}/transfers/{transfer}/runs"),
        attacker.http.get(f"/teams/{attacker.team_id}/transfers/{transfer}"),
        attacker.http.post(
            f"/teams/{attacker.team_id}/transfers/{transfer}/backfills",
            json={"range_start": DAY, "range_end": DAY},
        ),
        attacker.http.delete(f"/teams/{attacker.team_id}/transfers/{transfer}"),
    ]

    assert [answer.status_code for answer in answers] == [403, 403, 404, 404, 404]
