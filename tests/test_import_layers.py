"""Which part of the service may import which, read from the import statements of the sources
(every one: lazy imports inside functions count too). docs/architecture.md draws the layers.

A part imports only parts in the layers below its own, so no two parts import each other,
through any number of others. Workflow code imports only the workflow's own modules, the
activities' definitions and inputs, the statuses, `temporalio` and the standard library:
never the ORM, the database, the settings, the API or Temporal's client side.
"""

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO

# Top to bottom; a part may import the parts of any layer below its own.
LAYERS: list[set[str]] = [
    {"cli"},  # the `backfills` command: runs the API, the worker, the dev stack
    {"api", "worker"},  # the processes
    {"worker_pool"},  # `backfills worker --processes N`: N worker processes, supervised
    {"temporal_schedules"},  # transfers' Temporal Schedules
    {"temporal_client"},  # starting, signalling and listing workflows
    {"workflows"},  # deterministic workflow code
    {"activities"},  # what the workflows run: the database and the connectors
    {"observability"},
    {"connectors"},
    {"persistence"},
    {"config", "statuses", "recurring"},  # recurring: schedule specs, checked (pure)
]
PARTS = set().union(*LAYERS)
# Each persistence module that owns an aggregate, and the other aggregates' modules it may use
# (the shared ones below them, `db`, `models`, `lookup`, `errors`, ..., any may).
AGGREGATES: dict[str, set[str]] = {
    "accounts": set(),
    "secrets": set(),
    "transfers": set(),
    "schedules": {"transfers"},  # a transfer's schedule columns
    "runs": set(),
    "backfills": {"transfers", "runs"},  # a cancel ends runs; a create locks the transfer
    "recurring_runs": {"runs"},  # they complete as every run does
}
WORKFLOW_IMPORTS = {"workflows", "activities", "statuses", "temporalio"}


def _files(part: str) -> list[Path]:
    module = REPO / f"{part}.py"
    return [module] if module.exists() else sorted((REPO / part).rglob("*.py"))


def imports(path: Path) -> Iterator[str]:
    """The absolute name of every module the file imports."""
    package = ".".join(path.relative_to(REPO).parent.parts)
    return imports_of(path.read_text(), package)


def imports_of(source: str, package: str) -> Iterator[str]:
    """The absolute name of every module `source`, a module of `package`, imports (or of
    the name it imports from a module: `from a.b import c` gives `a.b.c`)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = [] if node.level == 0 else package.split(".")[: -node.level + 1 or None]
            module = ".".join([*base, *([node.module] if node.module else [])])
            # `from persistence import runs` imports the module persistence.runs
            yield from (f"{module}.{alias.name}" for alias in node.names)


def imported_parts(part: str) -> dict[str, set[str]]:
    """The other parts each file of `part` imports, by file."""
    found: dict[str, set[str]] = {}
    for path in _files(part):
        others = {name.split(".")[0] for name in imports(path)} & PARTS - {part}
        if others:
            found[str(path.relative_to(REPO))] = others
    return found


def test_every_part_of_the_service_has_a_layer() -> None:
    top_level = {
        path.stem
        for path in REPO.iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").exists())
        and path.stem not in {"tests", "bench"}
    }
    assert top_level == PARTS


@pytest.mark.parametrize("layer", range(len(LAYERS)))
def test_a_part_imports_only_the_layers_below_it(layer: int) -> None:
    below = set().union(*LAYERS[layer + 1 :])
    wrong = {
        path: sorted(others - below)
        for part in LAYERS[layer]
        for path, others in imported_parts(part).items()
        if others - below
    }
    assert not wrong, f"imports upwards or sideways (see docs/architecture.md): {wrong}"


def test_a_persistence_aggregate_uses_another_only_where_it_is_allowed() -> None:
    wrong = {}
    for aggregate, allowed in AGGREGATES.items():
        path = REPO / "persistence" / f"{aggregate}.py"
        used = {
            name.split(".")[1]
            for name in imports(path)
            if name.startswith("persistence.") and name.split(".")[1] in AGGREGATES
        }
        if used - allowed - {aggregate}:
            wrong[aggregate] = sorted(used - allowed - {aggregate})
    assert not wrong, f"persistence modules reach into other aggregates: {wrong}"


def test_workflow_code_imports_only_what_replays_deterministically() -> None:
    allowed = WORKFLOW_IMPORTS | set(sys.stdlib_module_names)
    wrong = {
        str(path.relative_to(REPO)): sorted(top)
        for path in _files("workflows")
        if (top := {name.split(".")[0] for name in imports(path)} - allowed)
    }
    assert not wrong, f"workflows import beyond their inputs and the activities: {wrong}"


def test_the_checks_see_the_imports_they_forbid() -> None:
    """The walk finds plain, `from` and relative imports, also inside functions."""
    source = (
        "import sqlalchemy.orm\n"
        "from persistence.models import Backfill\n"
        "from . import inputs\n"
        "from ..activities.inputs import BackfillRef\n"
        "def later():\n"
        "    from temporal_client import connect\n"
    )
    assert set(imports_of(source, "workflows.sub")) == {
        "sqlalchemy.orm",
        "persistence.models.Backfill",
        "workflows.sub.inputs",
        "workflows.activities.inputs.BackfillRef",
        "temporal_client.connect",
    }
