"""The workflows' numbers come from the settings; no input restates a default of config.py."""

import dataclasses
from datetime import date

import pytest

from config import Settings
from persistence.clock import utcnow
from persistence.models import Backfill, Transfer
from temporal_client import backfill_input, reconciler_input
from workflows.inputs import BackfillInput, RunPolicy
from workflows.reconciler import ReconcilerInput

# Fields with a default that is no setting's: the carried progress, how many rounds the
# reconciler runs before it continues as new, the backfill record's control fields, and the
# records queue's None (the workflow's own queue), which inputs from before it carry.
NOT_SETTINGS = {
    "carried",
    "rounds_per_run",
    "run_order",
    "max_failed_runs",
    "paused",
    "paused_reason",
    "records_task_queue",
    "planned_at_create",
}


@pytest.mark.parametrize("input_type", [BackfillInput, RunPolicy, ReconcilerInput])
def test_no_workflow_input_restates_a_default_of_the_settings(input_type: type) -> None:
    defaulted = {
        field.name
        for field in dataclasses.fields(input_type)
        if field.default is not dataclasses.MISSING
        or field.default_factory is not dataclasses.MISSING
    }
    assert defaulted <= NOT_SETTINGS


def test_a_backfill_input_takes_its_numbers_from_the_settings_and_the_transfer() -> None:
    settings = Settings(
        run_max_attempts=7,
        run_retry_initial_seconds=0.25,
        run_retry_max_seconds=9.0,
        run_timeout_seconds=99.0,
        run_heartbeat_timeout_seconds=11.0,
        runs_per_workflow_run=13,
        task_queue="q",
        records_task_queue="q-bookkeeping",
    )
    transfer = Transfer(
        id=3,
        team_id=2,
        display_name="t",
        source={},
        destination={},
        max_concurrent_runs=6,
        created_time=utcnow(),
        created_user_id=1,
    )
    backfill = Backfill(
        id=1,
        team_id=2,
        transfer_id=3,
        range_start_date=date(2024, 1, 1),
        range_end_date=date(2024, 1, 31),
        created_time=utcnow(),
        created_user_id=1,
        transfer_runs_total=31,
    )

    input = backfill_input(settings, backfill, transfer)

    assert input == BackfillInput(
        backfill_id=1,
        team_id=2,
        transfer_id=3,
        range_start=date(2024, 1, 1),
        range_end=date(2024, 1, 31),
        max_concurrent_runs=6,
        run_policy=RunPolicy(
            max_attempts=7,
            initial_retry_seconds=0.25,
            max_retry_seconds=9.0,
            timeout_seconds=99.0,
            heartbeat_timeout_seconds=11.0,
        ),
        runs_per_workflow_run=13,
        records_task_queue="q-bookkeeping",
    )


def test_the_records_queue_is_the_task_queues_name_with_records_unless_set() -> None:
    assert Settings(task_queue="q").resolved_records_task_queue == "q-records"
    assert Settings(task_queue="q", records_task_queue="r").resolved_records_task_queue == "r"
    with pytest.raises(ValueError, match="must differ"):
        Settings(task_queue="q", records_task_queue="q")


def test_the_reconciler_takes_its_numbers_from_the_settings() -> None:
    settings = Settings(
        reconcile_interval_seconds=3.0, reconcile_created_grace_seconds=4.0, task_queue="q"
    )

    assert reconciler_input(settings) == ReconcilerInput(
        interval_seconds=3.0, created_grace_seconds=4.0, records_task_queue="q-records"
    )
