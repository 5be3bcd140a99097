"""The FastAPI application factory.

``create_app`` wires the database, the queue and the scheduler together. It does not
create tables: Alembic owns the schema (``hpo db upgrade``, or ``migrate=True`` which runs
the same migrations at start-up, as the embedded default and the container do).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from threadpoolctl import threadpool_limits

from hpo.settings import Settings, get_settings
from hpo.spec import expand_errors
from server.api.routes import (
    docs,
    health,
    insights,
    projects,
    studies,
    tokens,
    trials,
    workers,
)
from server.auth import auth_required
from server.caches import Caches
from server.compression import ReadCompression
from server.dashboard.pages import error_page, wants_page
from server.db import Database
from server.delivery import Deliverer
from server.errors import ServiceError
from server.limits import BodySizeLimit, NulGuard
from server.queue import NullQueue, TrialQueue
from server.scheduler import Scheduler
from server.stopping import CacheWarmUp

__all__ = ["API_PREFIX", "create_app", "freeze_startup_heap"]

API_PREFIX = "/api/v1"
log = logging.getLogger(__name__)
_frozen = False


def freeze_startup_heap() -> None:
    """Move the objects alive after start-up (modules, routes, schemas: ~200,000 on the
    server) out of the cyclic garbage collector's reach, once per process.

    A full collection walks every tracked object with the GIL held: 240-440 ms on a
    2-core machine, landing on whichever request allocated last. Frozen objects are
    never walked again (nor collected: only start-up objects, which live as long as the
    process, should be; hence once, after a full collection, and not again for a
    second app in the same process, e.g. in tests)."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None,
    *,
    queue: TrialQueue | None = None,
    migrate: bool = False,
    run_scheduler: bool = True,
    internal_token: str | None = None,
) -> FastAPI:
    """Build the app. ``queue`` carries trial ids to workers (default: Redis/RQ when
    ``HPO_REDIS_URL`` is set, else none and trials wait in ``queued``); ``migrate``
    upgrades the schema to head before serving;
    ``run_scheduler=False`` leaves scheduling to explicit ``scheduler.run_once()`` calls
    (tests); ``internal_token`` is a worker-scope token for the embedded server's own
    local workers (it does not turn auth on)."""
    settings = settings or get_settings()
    # The server's numerical work is small linear algebra (GP fits in the scheduler):
    # BLAS threads only contend with the API threads on a busy machine (4-10x slower
    # measured on 2 cores), so the server process keeps BLAS to one thread.
    threadpool_limits(limits=1, user_api="blas")
    url = settings.resolved_database_url
    if migrate:
        from server.migrate import upgrade

        upgrade(url)
    # The app's caches (speed only, server.caches): made here, carried by the
    # database's sessions to whatever code fills them.
    caches = Caches()
    db = Database(url, caches=caches)
    if queue is None and settings.redis_url:
        from server.rq_queue import RQTrialQueue

        queue = RQTrialQueue(settings.redis_url, db, name=settings.queue_name)
    scheduler = Scheduler(
        db,
        queue or NullQueue(),
        interval=settings.scheduler_interval,
        heartbeat_timeout=settings.heartbeat_timeout,
        reconcile_interval=settings.reconcile_interval,
        dispatch=settings.dispatch,
    )

    deliverer = Deliverer(
        db,
        retry_base=settings.webhook_retry_base,
        max_attempts=settings.webhook_max_attempts,
        timeout=settings.webhook_timeout,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        freeze_startup_heap()
        if run_scheduler:
            scheduler.start()
            deliverer.start()
        # The median rule's caches, built in the background: the first decision of a
        # large study would otherwise build its cache on one worker's report (2-3 s at
        # 100,000 trials). Start-up and readiness do not wait for it.
        warm_up = app.state.stopping_warm_up = CacheWarmUp(db).start()
        try:
            yield
        finally:
            warm_up.stop()
            scheduler.stop()
            if run_scheduler:
                deliverer.stop()
            db.dispose()

    app = FastAPI(
        title="HPO Service",
        version="0.1.0",
        description="Hyperparameter optimization: studies, trials, strategies, workers.",
        lifespan=lifespan,
        # Served by server.api.routes.docs instead, behind the token like the API.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.auth_on = auth_required(
        settings.auth, settings.host, bool(settings.api_token or settings.worker_token)
    )
    app.state.internal_token = internal_token
    app.state.caches = caches
    app.state.db = db
    app.state.scheduler = scheduler
    app.state.deliverer = deliverer
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(studies.router, prefix=API_PREFIX)
    app.include_router(insights.router, prefix=API_PREFIX)
    app.include_router(trials.router, prefix=API_PREFIX)
    app.include_router(workers.router, prefix=API_PREFIX)
    app.include_router(tokens.router, prefix=API_PREFIX)
    app.include_router(projects.router, prefix=API_PREFIX)
    app.include_router(projects.events, prefix=API_PREFIX)
    from server.dashboard import install as install_dashboard

    install_dashboard(app)
    _install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(NulGuard)
    app.add_middleware(ReadCompression)
    return app


def _field_of(error: dict[str, Any]) -> tuple[list[Any], str]:
    """Precise location of a validation error: our spec errors carry a dotted field."""
    loc = list(error.get("loc", ()))
    if error.get("type") == "spec_field":
        field = error["ctx"]["field"]
        return ["body", *field.split(".")], field
    if error.get("type") == "json_invalid":  # loc holds a character offset, not a field
        return ["body"], "body"
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path") else loc
    return loc, ".".join(str(p) for p in parts) or "body"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        if wants_page(request):  # a dashboard page: an error page, not raw JSON
            return error_page(request, exc.status_code, exc.message)
        if exc.status_code == 422:
            # The shape of every other 422 (the documented validation error), so a
            # client reads field errors one way whichever layer found them.
            field = exc.field or "body"
            msg = exc.message.removeprefix(f"{field}: ")
            item = {
                "loc": ["body", *field.split(".")],
                "field": field,
                "msg": msg,
                "type": "value_error",
            }
            return JSONResponse(status_code=422, content={"detail": [item]})
        body: dict[str, Any] = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        return JSONResponse(status_code=exc.status_code, content=body)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code >= 400 and wants_page(request):
            message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
            return error_page(request, exc.status_code, message)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = []
        for error in expand_errors(list(exc.errors())):
            loc, field = _field_of(error)
            kind = error.get("type")
            msg = error["ctx"]["message"] if kind == "spec_field" else error["msg"]
            detail.append({"loc": loc, "field": field, "msg": msg, "type": kind})
        return JSONResponse(status_code=422, content=jsonable_encoder({"detail": detail}))
