"""Liveness and readiness, outside `/v1` and without a token."""

from typing import Any

from fastapi import APIRouter, Request

from api.deps import AsyncDbDep
from api.envelope import Envelope, error_responses, ok
from api.errors import ApiErrorResponse
from persistence.db import Database

router = APIRouter(tags=["health"])
_REQUEST_ID = {"request_id": "6f1c2b0e9d6a4e0f8a2b1c3d4e5f6a7b"}


def _example(data: dict[str, str]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {"application/json": {"example": {"meta": _REQUEST_ID, "data": data}}}}
    }


@router.get(
    "/healthz",
    operation_id="healthz",
    summary="The process is alive",
    responses={**_example({"status": "ok"}), **error_responses()},
)
def healthz() -> Envelope[dict[str, str]]:
    return ok({"status": "ok"})


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="The database and Temporal are reachable",
    responses={**_example({"database": "ok", "temporal": "ok"}), **error_responses(503)},
)
async def readyz(request: Request, database: AsyncDbDep) -> Envelope[dict[str, str]]:
    checks = {
        "database": await database.run(Database.ping),
        "temporal": await request.app.state.temporal.is_reachable(),
    }
    down = [name for name, good in checks.items() if not good]
    if down:
        raise ApiErrorResponse(503, "not ready", description=f"unreachable: {', '.join(down)}")
    return ok({name: "ok" for name in checks})
