"""docs/api.md explains the API the service serves: every operation, status, error code and
field of the OpenAPI document is in it, and no file sends a reader outside the repository."""

import re
import subprocess
from typing import Any

import pytest

from api.envelope import ERROR_CODES
from api.main import app
from statuses import BackfillStatus, RunStatus
from tests.support import REPO

DOC = (REPO / "docs" / "api.md").read_text()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return app.openapi()


def _shape(path: str) -> str:
    """A path with its placeholders blanked: `{team_id}` and `{NAME}` are the same slot."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_operation_is_described(document: dict[str, Any]) -> None:
    described = {
        (method.upper(), _shape(path))
        for method, path in re.findall(r"\b(GET|POST|PUT|PATCH|DELETE)(?:/GET)? `(/[^`]+)`", DOC)
    }
    served = {
        (method.upper(), _shape(path.removeprefix("/v1")))
        for path, methods in document["paths"].items()
        if path.startswith("/v1/")
        for method in methods
    }

    assert served - described == set()
    assert described - served == set(), "the page describes operations the API does not serve"


@pytest.mark.parametrize("schema", ["BackfillOut", "TransferRunDetailOut", "TransferOut"])
def test_every_field_of_the_answers_is_explained(document: dict[str, Any], schema: str) -> None:
    fields = document["components"]["schemas"][schema]["properties"]

    assert [field for field in fields if f"`{field}`" not in DOC] == []


def test_every_status_and_error_code_is_explained() -> None:
    values = [*BackfillStatus, *RunStatus, *ERROR_CODES.values(), "CONFLICT_ERROR"]

    assert [value for value in values if f"`{value}`" not in DOC] == []


def test_no_file_of_the_project_points_outside_it() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    this_file = "tests/test_api_reference.py"
    pointing = [
        name
        for name in tracked
        if name != this_file
        and (REPO / name).is_file()
        and "../shared/" in (REPO / name).read_text(errors="ignore")
    ]

    assert pointing == []
