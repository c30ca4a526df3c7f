"""Every status string of the service's code comes from `statuses.py`."""

import ast
from collections import Counter
from typing import get_args

from api.schemas.backfills import UpdateBackfillRequest
from statuses import BackfillStatus, QueryStatus, RunOutcome, RunStatus
from tests.support import REPO
from tests.test_import_layers import PARTS, imports

STATUS_VALUES = {
    str(s) for enum in (BackfillStatus, RunStatus, RunOutcome, QueryStatus) for s in enum
}
# Strings that are a status's spelling without being a status, and how often each may appear.
NOT_STATUSES = Counter(
    {
        # the column titles of `backfills list`: counts of runs, and the backfill's creation
        ("cli/client.py", "COMPLETED"): 1,
        ("cli/client.py", "FAILED"): 1,
        ("cli/client.py", "CREATED"): 1,
        # a `Literal` type must spell its value; test_the_cancel_request_accepts_cancelled
        ("api/schemas/backfills.py", "CANCELLED"): 1,
    }
)


def _status_literals() -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for part in PARTS - {"statuses"}:
        module = REPO / f"{part}.py"
        for path in [module] if module.exists() else sorted((REPO / part).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in STATUS_VALUES:
                    found[(str(path.relative_to(REPO)), node.value)] += 1
    return found


def test_no_status_is_spelled_outside_statuses_py() -> None:
    stray = _status_literals() - NOT_STATUSES
    assert not stray, f"use the enums of statuses.py: {dict(stray)}"


def test_the_cancel_request_accepts_cancelled() -> None:
    literal, _absent = get_args(UpdateBackfillRequest.model_fields["status"].annotation)
    assert get_args(literal) == (BackfillStatus.CANCELLED,)


def test_statuses_py_needs_only_the_standard_library() -> None:
    assert {name.split(".")[0] for name in imports(REPO / "statuses.py")} == {"enum"}
