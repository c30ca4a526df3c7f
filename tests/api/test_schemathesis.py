"""Bad input at scale: schemathesis over the service's own OpenAPI document, with a valid token.

Schemathesis loads `/openapi.json` from the running API and runs all its phases on every
operation: the documented examples, the coverage phase (boundary and invalid values), fuzzing
(valid and invalid requests, a bounded number per operation) and the stateful phase (sequences
that follow the links the document declares). Every answer goes through schemathesis' default
checks: no 5xx, the status code and `Allow` header are ones the document lists, the body matches
the documented schema, invalid input is rejected and valid input accepted. Generation is
seeded and derandomized, so CI sends the same requests on every run.

The caller owns a team with a transfer whose backfill has completed (so runs exist) and one
with a backfill still running (so a cancel can succeed). Each id in a generated path is either
the generated one or the tenant's own, which the generator picks as well, so both "exists" and
"random id" paths are exercised. Runs on the SQLite stack only: the PostgreSQL stack serves the
same routes, and running both would double the time.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import HookContext, engine
from schemathesis.engine import Status, events
from schemathesis.engine.recorder import ScenarioRecorder
from schemathesis.schemas import BaseSchema

from tests.support import Stack, Tenant, new_tenant

MAX_EXAMPLES = 30
SEED = 20240601
MAX_ID = 2**31 - 1


@pytest.fixture
def fuzzed_tenant(stack: Stack) -> Iterator[Tenant]:
    """The caller; afterwards no incomplete backfill of its team is left for the worker."""
    tenant = new_tenant(stack)
    yield tenant
    for backfill in tenant.http.get(f"/teams/{tenant.team_id}/backfills").json()["data"]:
        tenant.http.patch(
            f"/teams/{tenant.team_id}/backfills/{backfill['transfer_backfill_id']}",
            json={"status": "CANCELLED"},
        )
    tenant.http.close()


@pytest.fixture
def api_schema(stack: Stack, fuzzed_tenant: Tenant) -> BaseSchema:
    tenant = fuzzed_tenant
    # One row a day, no latency: whatever backfill the generator manages to create is cheap.
    done_transfer = tenant.create_transfer(max_concurrent_runs=2, rows_per_day=1)
    done = tenant.create_backfill(done_transfer, "2024-01-01", "2024-01-03")
    tenant.wait_until_status(done["transfer_backfill_id"], "COMPLETED")
    # One run at a time, slowly: still running when the generator gets to cancel it.
    running_transfer = tenant.create_transfer(
        max_concurrent_runs=1, rows_per_day=1, latency_ms=2000
    )
    running = tenant.create_backfill(running_transfer, "2024-02-01", "2024-02-29")
    known: dict[str, list[int]] = {
        "team_id": [tenant.team_id],
        "transfer_id": [done_transfer, running_transfer],
        "backfill_id": [done["transfer_backfill_id"], running["transfer_backfill_id"]],
        "transfer_run_id": [tenant.runs(done_transfer)[0]["id"]],
    }
    root = stack.api_url.removesuffix("/v1")
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {tenant.token}"},
            "request-timeout": 30,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {
                # The contract's 422: a request that matches the schema but cannot be carried
                # out (a range ending before it starts or reaching into the future, an
                # overlapping backfill, cancelling a final one, a connector spec the service
                # cannot use). `status_code_conformance` still fails a 422 from an operation
                # whose document does not list it.
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
                },
            },
            # The stateful phase follows the links the document declares. Guessed links are
            # off: from parameter names, schemathesis guesses that a new transfer has a
            # "latest backfill" (it has none until one is created: 404 by contract) and misses
            # that `transfer_backfill_id` is the `backfill_id` of the backfill routes.
            "phases": {"stateful": {"inference": {"algorithms": []}}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{root}/openapi.json", config=config)
    schema.config.update(base_url=root)

    @schema.hook
    def flatmap_path_parameters(
        context: HookContext, path_parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        """Each valid generated id is kept or swapped for one of the tenant's own."""
        if not path_parameters:
            return st.just(path_parameters)
        return st.fixed_dictionaries(
            {
                name: st.sampled_from([*known[name], value])
                if name in known and isinstance(value, int) and 1 <= value <= MAX_ID
                else st.just(value)
                for name, value in path_parameters.items()
            }
        )

    return schema


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_operation_answers_as_its_openapi_document_says(api_schema: BaseSchema) -> None:
    failures: list[str] = []
    tested: set[str] = set()
    for event in engine.from_schema(api_schema).execute():
        if isinstance(event, events.ScenarioFinished):
            if event.recorder.interactions and event.label is not None:
                tested.add(event.label)
            if event.status in (Status.FAILURE, Status.ERROR):
                failures.extend(_describe(event.recorder))
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            failures.append(f"schemathesis could not run: {event.exception!r}")

    assert not failures, "\n\n".join(failures)
    operations = {
        f"{method.upper()} {path}"
        for path, methods in api_schema.raw_schema["paths"].items()
        for method in methods
    }
    assert tested == operations


def _describe(recorder: ScenarioRecorder) -> list[str]:
    found = []
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            response = recorder.find_response(case_id=case_id)
            body = response.text[:500] if response is not None else "(no response)"
            found.append(
                f"{recorder.label}: {check.name}: {failure.title}\n{failure.message}\n"
                f"{check.failure_info.code_sample}\n-> {body}"
            )
    return found or [f"{recorder.label}: failed without a check failure"]
