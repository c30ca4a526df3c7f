"""The REST API: wiring only. `uvicorn api.main:app`, or `backfills api`."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.body_limit import BodySizeLimitMiddleware
from api.console.router import install_console
from api.deps import AsyncDatabase
from api.docs import install_docs
from api.errors import install_error_handlers
from api.metrics import MetricsMiddleware
from api.openapi import install_openapi
from api.rate_limit import rate_limiters
from api.request_context import RequestContextMiddleware
from api.routers import (
    backfill_dates,
    backfills,
    dry_runs,
    health,
    me,
    metrics,
    runs,
    secrets,
    transfers,
)
from api.signal_outbox import keep_sending
from api.temporal import TemporalConnection
from config import Settings, get_settings
from observability.tracing import setup_tracing
from persistence.db import Database
from persistence.secret_box import load_secret_box

log = logging.getLogger("backfills.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    setup_tracing(settings, service_name="backfills-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.db = Database(settings.resolved_database_url)
        app.state.secret_box = load_secret_box(settings)
        app.state.temporal = TemporalConnection(settings)
        # per token digest, and per client address for failed authentications (api/deps.py)
        app.state.rate_limiter, app.state.auth_failure_limiter = rate_limiters(settings)
        if not await app.state.temporal.is_reachable():
            log.warning("Temporal is not reachable yet; backfill writes answer 503 until it is")
        outbox = asyncio.create_task(
            keep_sending(
                AsyncDatabase(app.state.db), app.state.temporal, settings.signal_retry_seconds
            )
        )
        yield
        outbox.cancel()

    app = FastAPI(
        title="Backfill service",
        version="1.0.0",
        description="Backfills of data-warehouse transfers, run on Temporal.",
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,  # served by api/docs.py, without CDNs
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(MetricsMiddleware)  # outermost: counts every answer
    install_error_handlers(app)
    for router in (
        backfills.router,
        dry_runs.router,
        backfill_dates.router,
        runs.router,
        transfers.router,
        secrets.router,
        me.router,
    ):
        app.include_router(router, prefix="/v1")
    app.include_router(health.router)
    app.include_router(metrics.router)
    install_openapi(app)
    install_docs(app)
    install_console(app)
    return app


app = create_app()
