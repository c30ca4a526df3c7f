"""The production stack's files: docker-compose.yml, Dockerfile and .dockerignore.

No Docker engine runs here, so these tests read the files and check their structure, and that
the environment the compose file sets is the environment the code reads (`config.Settings`).
"""

import fnmatch
import importlib
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from config import Settings
from workflows import search_attributes

REPO = Path(__file__).resolve().parent.parent
PREFIX = str(Settings.model_config.get("env_prefix", ""))
SETTINGS = {f"{PREFIX}{name}".upper(): field for name, field in Settings.model_fields.items()}
LONG_RUNNING = ("postgres", "temporal", "temporal-ui", "api", "worker")
OURS = ("migrate", "api", "worker")  # the services that run the `backfills` command
# PostgreSQL's SQL visibility store has three pre-allocated Int search attribute slots
SQL_VISIBILITY_INT_SLOTS = 3


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def interpolate(value: str) -> str:
    """Compose's `${NAME:-default}`, `${NAME:?error}` and `${NAME}`, with nothing set in the
    environment."""
    return re.sub(r"\$\{\w+(?::?-([^}]*)|:?\?[^}]*)?\}", lambda m: m.group(1) or "", value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): interpolate(str(v)) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service.get("healthcheck", {}).get("test")
    return " ".join(test) if isinstance(test, list) else str(test or "")


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(
        float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(duration))
    )


def test_compose_has_the_whole_stack(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", "temporal", "temporal-ui", "migrate", "api", "worker"} <= set(services)


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_each_long_running_service_has_a_health_check(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    healthcheck = services[name].get("healthcheck", {})

    assert not healthcheck.get("disable"), name
    assert healthcheck_command(services[name]).startswith(("CMD ", "CMD-SHELL ")), name
    assert healthcheck.get("retries", 0) >= 3, name


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_each_long_running_service_restarts(services: dict[str, dict[str, Any]], name: str) -> None:
    assert services[name].get("restart") in {"always", "unless-stopped", "on-failure"}, name


def test_temporal_runs_on_the_composes_postgresql_and_sets_up_its_schema(
    services: dict[str, dict[str, Any]],
) -> None:
    temporal = services["temporal"]
    env = environment(temporal)
    postgres = environment(services["postgres"])

    assert temporal["image"].startswith("temporalio/auto-setup:")  # creates DBs and schemas
    assert env["DB"] in {"postgres12", "postgres12_pgx"}
    assert env["POSTGRES_SEEDS"] == "postgres"
    assert env["POSTGRES_USER"] == postgres["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == postgres["POSTGRES_PASSWORD"]
    assert env.get("SKIP_SCHEMA_SETUP", "false") == "false"
    assert depends_on(temporal) == {"postgres": "service_healthy"}


def test_temporal_leaves_the_int_search_attribute_slots_to_ours(
    services: dict[str, dict[str, Any]],
) -> None:
    """auto-setup's example attributes would take an Int slot the worker needs."""
    ints = [a for a in search_attributes.ALL if a.indexed_value_type.name == "INT"]
    assert len(ints) <= SQL_VISIBILITY_INT_SLOTS

    assert environment(services["temporal"])["SKIP_ADD_CUSTOM_SEARCH_ATTRIBUTES"] == "true"


def test_temporals_health_check_waits_for_the_namespace_the_service_uses(
    services: dict[str, dict[str, Any]],
) -> None:
    namespace = environment(services["api"])[f"{PREFIX}TEMPORAL_NAMESPACE"]
    command = healthcheck_command(services["temporal"])

    assert environment(services["temporal"]).get("DEFAULT_NAMESPACE", "default") == namespace
    assert "cluster health" in command
    assert f"namespace describe {namespace}" in command


def test_temporal_ui_talks_to_temporal_and_is_published(
    services: dict[str, dict[str, Any]],
) -> None:
    ui = services["temporal-ui"]

    assert ui["image"].startswith("temporalio/ui:")
    assert (
        environment(ui)["TEMPORAL_ADDRESS"]
        == environment(services["api"])[f"{PREFIX}TEMPORAL_ADDRESS"]
    )
    assert any(str(p).endswith(":8080") for p in ui["ports"])
    assert depends_on(ui) == {"temporal": "service_healthy"}


def test_migrate_is_a_one_shot_step_after_postgresql(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]

    assert migrate["command"] == ["backfills", "migrate"]
    assert migrate.get("restart", "no") == "no"
    assert depends_on(migrate) == {"postgres": "service_healthy"}


@pytest.mark.parametrize("name", ["api", "worker"])
def test_api_and_worker_start_after_the_migration_and_temporal(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    conditions = depends_on(services[name])

    assert conditions["migrate"] == "service_completed_successfully"
    assert conditions["temporal"] == "service_healthy"
    assert services[name]["command"] == ["backfills", name]


def test_the_worker_scales(services: dict[str, dict[str, Any]]) -> None:
    """`docker compose up --scale worker=N` needs no fixed name and no published port."""
    worker = services["worker"]

    assert "container_name" not in worker
    assert "ports" not in worker
    assert "hostname" not in worker
    assert "deploy" not in worker or worker["deploy"].get("replicas", 1) >= 1


@pytest.mark.parametrize("name", OURS)
def test_our_services_are_built_from_the_dockerfile(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    build = services[name]["build"]
    context = build if isinstance(build, str) else build.get("context", ".")

    assert (REPO / context / "Dockerfile").exists()


def test_every_backfills_variable_the_compose_sets_is_a_setting(
    services: dict[str, dict[str, Any]],
) -> None:
    unknown = {
        (name, variable)
        for name, service in services.items()
        for variable in environment(service)
        if variable.startswith(PREFIX) and variable not in SETTINGS
    }

    assert not unknown, f"not fields of config.Settings: {sorted(unknown)}"


@pytest.mark.parametrize("name", OURS)
def test_our_services_set_what_a_deployment_must(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = environment(services[name])
    postgres = environment(services["postgres"])

    url = make_url(env[f"{PREFIX}DATABASE_URL"])
    assert url.drivername.startswith("postgresql")
    assert url.host == "postgres"
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.database == postgres["POSTGRES_DB"]
    assert env[f"{PREFIX}TEMPORAL_ADDRESS"] == "temporal:7233"
    ours = {k.removeprefix(PREFIX).lower(): v for k, v in env.items() if k.startswith(PREFIX)}
    settings = Settings.model_validate(ours)  # the values have the fields' types
    assert settings.resolved_database_url == env[f"{PREFIX}DATABASE_URL"]


def test_api_and_worker_agree_on_namespace_and_task_queue(
    services: dict[str, dict[str, Any]],
) -> None:
    keys = (f"{PREFIX}TEMPORAL_NAMESPACE", f"{PREFIX}TASK_QUEUE", f"{PREFIX}RECORDS_TASK_QUEUE")
    api, worker = environment(services["api"]), environment(services["worker"])

    assert [api.get(k) for k in keys] == [worker.get(k) for k in keys]


def test_the_api_listens_where_it_is_published_and_checked(
    services: dict[str, dict[str, Any]],
) -> None:
    api = services["api"]
    env = environment(api)
    port = env[f"{PREFIX}API_PORT"]

    assert env[f"{PREFIX}API_HOST"] == "0.0.0.0"
    assert any(str(p).endswith(f":{port}") for p in api["ports"])
    assert f"127.0.0.1:{port}/readyz" in healthcheck_command(api)


def test_the_workers_health_check_reads_its_metrics_endpoint(
    services: dict[str, dict[str, Any]],
) -> None:
    env = environment(services["worker"])
    port = (
        env.get(f"{PREFIX}WORKER_METRICS_PORT") or SETTINGS[f"{PREFIX}WORKER_METRICS_PORT"].default
    )

    assert f"127.0.0.1:{port}/metrics" in healthcheck_command(services["worker"])


def test_the_worker_gets_time_to_drain_before_it_is_killed(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    variable = f"{PREFIX}WORKER_SHUTDOWN_GRACE_SECONDS"
    grace = float(environment(worker).get(variable) or SETTINGS[variable].default)

    assert seconds(worker["stop_grace_period"]) > grace


def test_the_worker_keeps_its_data_directory_on_a_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    data_dir = environment(services["worker"])[f"{PREFIX}DATA_DIR"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["worker"]["volumes"]}

    assert data_dir in mounts
    assert mounts[data_dir] in compose["volumes"]


# --- Dockerfile ---------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    return instructions[last_from:]


def test_the_dockerfile_is_multi_stage() -> None:
    instructions = dockerfile()
    stages = [args for instruction, args in instructions if instruction == "FROM"]

    assert len(stages) >= 2
    build_stage = stages[0].split()[-1]
    assert any(
        instruction == "COPY" and f"--from={build_stage}" in args
        for instruction, args in final_stage(instructions)
    )


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [args for instruction, args in final_stage(dockerfile()) if instruction == "USER"]

    assert users, "the final stage must set USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_the_image_owns_its_data_directory_for_the_user() -> None:
    """A new named volume takes the ownership of the directory it is mounted on."""
    runs = " ".join(args for ins, args in dockerfile() if ins == "RUN")

    assert "/home/backfills/data" in runs
    assert re.search(r"chown\s+(-R\s+)?backfills", runs)


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())

    assert {".git", ".venv", ".data", ".env"} <= ignored


def _shipped_top_level_names() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    return {
        name
        for name in _first_party_top_level_names()
        if name in setuptools.get("py-modules", [])
        or any(fnmatch.fnmatch(name, p) for p in setuptools["packages"]["find"]["include"])
    }


def _first_party_top_level_names() -> set[str]:
    for entry_point in ("cli.main", "worker", "api.main"):
        importlib.import_module(entry_point)
    names = set()
    for module in list(sys.modules.values()):
        path = Path(getattr(module, "__file__", None) or "/")
        if path.is_relative_to(REPO) and not path.is_relative_to(REPO / ".venv"):
            names.add(path.relative_to(REPO).parts[0].removesuffix(".py"))
    return names - {"tests"}


def test_the_wheel_ships_every_module_the_service_imports() -> None:
    """The image installs the wheel, so a package missing from pyproject.toml is missing there."""
    imported = _first_party_top_level_names()

    assert {"api", "cli", "workflows", "config", "worker"} <= imported
    assert imported == _shipped_top_level_names()
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert not imported & ignored


@pytest.mark.parametrize("name", ["api", "worker"])
def test_the_secrets_key_must_be_given_and_temporals_databases_are_protected(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    raw = services[name]["environment"]
    protected = environment(services[name])[f"{PREFIX}PROTECTED_DATABASE_URLS"].split(",")
    temporal = environment(services["temporal"])

    assert raw[f"{PREFIX}SECRETS_KEY"].startswith(f"${{{PREFIX}SECRETS_KEY:?")
    assert {make_url(url).host for url in protected} == {temporal["POSTGRES_SEEDS"]}
    assert {make_url(url).database for url in protected} == {"temporal", "temporal_visibility"}
