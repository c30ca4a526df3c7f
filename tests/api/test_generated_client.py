"""A client generated from the service's own OpenAPI document (openapi-python-client) drives
the service: the document is complete enough to be used, not only read."""

import datetime as dt
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support import Stack, Tenant, wait_for

PACKAGE = "backfill_service_client"


@pytest.fixture(scope="module")
def generated(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("generated")
    document = root / "openapi.json"
    document.write_bytes(httpx.get(stack.api_url.removesuffix("/v1") + "/openapi.json").content)
    bin_dir = str(Path(sys.executable).parent)
    subprocess.run(
        [f"{bin_dir}/openapi-python-client", "generate", "--path", str(document),
         "--output-path", str(root / "client"), "--overwrite"],
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    sys.path.insert(0, str(root / "client"))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root / "client"))
        for name in [m for m in sys.modules if m.startswith(PACKAGE)]:
            del sys.modules[name]


def call(generated: ModuleType, module: str, **kwargs: Any) -> Any:
    operation = importlib.import_module(f"{PACKAGE}.api.{module}")
    return operation.sync(**kwargs)


def test_a_generated_client_creates_watches_lists_and_cancels(
    generated: ModuleType, tenant: Tenant
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    root = tenant.stack.api_url.removesuffix("/v1")  # the document's paths start with /v1
    client = generated.AuthenticatedClient(base_url=root, token=tenant.token)
    team = tenant.team_id

    transfer = call(
        generated,
        "transfers.create_transfer",
        team_id=team,
        client=client,
        body=models.CreateTransferRequest.from_dict(
            {
                "display_name": "generated",
                "source": {"type": "demo", "rows_per_day": 2, "latency_ms": 200},
                "destination": {"type": "sqlite"},
                "max_concurrent_runs": 2,
            }
        ),
    ).data
    created = call(
        generated,
        "backfills.create_backfill",
        team_id=team,
        transfer_id=transfer.transfer_id,
        client=client,
        body=models.CreateBackfillRequest(
            range_start=dt.date(2024, 4, 1), range_end=dt.date(2024, 4, 3)
        ),
    ).data
    assert created.status == models.BackfillStatus.CREATED
    backfill_id = created.transfer_backfill_id

    def completed() -> Any:
        found = call(
            generated,
            "backfills.get_backfill",
            team_id=team,
            backfill_id=backfill_id,
            client=client,
        ).data
        return found if found.status == models.BackfillStatus.COMPLETED else None

    done = wait_for(completed, timeout=60)
    assert (done.transfer_runs_completed, done.transfer_runs_total) == (3, 3)

    runs = call(
        generated,
        "transfer_runs.list_transfer_runs",
        team_id=team,
        transfer_id=transfer.transfer_id,
        client=client,
        start_date=dt.date(2024, 4, 1),
        end_date=dt.date(2024, 4, 3),
        sort_field=models.RunSortField.DATA_DATE,
        sort_direction=models.SortDirection.ASC,
    ).data
    assert [run.data_date for run in runs] == [dt.date(2024, 4, day) for day in (1, 2, 3)]
    detail = call(
        generated,
        "transfer_runs.get_transfer_run",
        team_id=team,
        transfer_run_id=runs[0].id,
        client=client,
    ).data
    assert detail.total_rows == 2 and detail.query_details[0].rows == 2

    refused = call(
        generated,
        "backfills.cancel_backfill",
        team_id=team,
        backfill_id=backfill_id,
        client=client,
        body=models.UpdateBackfillRequest(status="CANCELLED"),
    )
    assert isinstance(refused, models.ErrorEnvelope)
    assert refused.error.code == "UNPROCESSABLE_ENTITY"

    dry_run = call(
        generated,
        "backfills.dry_run_backfill",
        team_id=team,
        transfer_id=transfer.transfer_id,
        client=client,
        body=models.CreateBackfillRequest(
            range_start=dt.date(2024, 4, 1), range_end=dt.date(2024, 4, 3)
        ),
    ).data
    assert not dry_run.would_be_refused  # a COMPLETED backfill blocks no overlap
    assert dry_run.estimated_end_time is not None  # three runs of history to go by
    dates = call(
        generated,
        "backfills.list_backfill_dates",
        team_id=team,
        backfill_id=backfill_id,
        client=client,
    ).data
    assert [d.status for d in dates] == ["COMPLETED"] * 3
    pause_refused = call(
        generated,
        "backfills.cancel_backfill",
        team_id=team,
        backfill_id=backfill_id,
        client=client,
        body=models.UpdateBackfillRequest(paused=True),
    )
    assert pause_refused.error.code == "UNPROCESSABLE_ENTITY"
    retry_refused = call(
        generated,
        "backfills.retry_backfill",
        team_id=team,
        backfill_id=backfill_id,
        client=client,
        body=models.RetryBackfillRequest(),
    )
    assert retry_refused.error.code == "UNPROCESSABLE_ENTITY"
