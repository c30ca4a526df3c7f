"""The team of the activity being run, for its log lines.

Temporal's activity context names the workflow (and so the backfill) but not the team. An
activity whose input carries a `team_id` has it put in a context variable by this interceptor
before it runs; the variable reaches the activity's thread (the SDK copies the context) and
stays set for the SDK's own lines about that attempt, which are written in the same task.
"""

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

_team_id: ContextVar[int | None] = ContextVar("activity_team_id", default=None)


def team_fields() -> Mapping[str, object]:
    """A log context provider: the current activity's team, when known."""
    return {"team_id": _team_id.get()}


class TeamContextInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TeamContextInbound(next)


class _TeamContextInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        team_id = getattr(input.args[0], "team_id", None) if input.args else None
        if isinstance(team_id, int):
            _team_id.set(team_id)
        return await self.next.execute_activity(input)
