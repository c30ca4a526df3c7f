"""Replays recorded histories with today's workflow code: non-determinism fails here."""

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.workflows.histories import DIRECTORY
from workflows.backfill import BackfillWorkflow
from workflows.reconciler import ReconcilerWorkflow
from workflows.recurring import RecurringRunWorkflow

HISTORIES = {path.stem: path.read_text() for path in sorted(DIRECTORY.glob("*.json"))}


def test_histories_are_recorded() -> None:
    assert len(HISTORIES) >= 5, "tests/workflows/histories/ lost its recorded histories"


@pytest.mark.parametrize("name", sorted(HISTORIES))
async def test_recorded_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json(name, HISTORIES[name])
    replayer = Replayer(
        workflows=[BackfillWorkflow, ReconcilerWorkflow, RecurringRunWorkflow],
        data_converter=pydantic_data_converter,
    )
    await replayer.replay_workflow(history)
