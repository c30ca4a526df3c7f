"""Liveness and readiness, outside `/v1` and without a token."""

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import DbDep
from api.envelope import Envelope, error_responses, ok
from api.errors import ApiError

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", summary="The process is alive")
def healthz() -> Envelope[dict[str, str]]:
    return ok({"status": "ok"})


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="The database and Temporal are reachable",
    responses=error_responses(503),
)
async def readyz(request: Request, db: DbDep) -> Envelope[dict[str, str]]:
    checks = {
        "database": await run_in_threadpool(db.ping),
        "temporal": await request.app.state.temporal.is_reachable(),
    }
    down = [name for name, good in checks.items() if not good]
    if down:
        raise ApiError(503, "not ready", description=f"unreachable: {', '.join(down)}")
    return ok({name: "ok" for name in checks})
