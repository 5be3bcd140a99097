"""Worker registry routes: workers announce themselves (worker scope); users list them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from hpo.schemas import WorkerIn, WorkerPublic
from server import workers
from server.api.deps import SessionDep
from server.auth import require

router = APIRouter(prefix="/workers", tags=["workers"], dependencies=[Depends(require("worker"))])


@router.post("", response_model=WorkerPublic)
def register_worker(body: WorkerIn, session: SessionDep, request: Request) -> WorkerPublic:
    """Register or refresh a worker (workers repeat this as their heartbeat)."""
    workers.register_worker(session, body)
    session.flush()
    timeout = request.app.state.settings.heartbeat_timeout
    return next(
        w
        for w in workers.list_workers(session, heartbeat_timeout=timeout, include_stopped=True)
        if w.name == body.name
    )


@router.get("", response_model=list[WorkerPublic], dependencies=[Depends(require("user"))])
def list_workers(
    session: SessionDep,
    request: Request,
    all_: Annotated[bool, Query(alias="all", description="Include stopped workers.")] = False,
) -> list[WorkerPublic]:
    """Workers with host, devices, current trials and last heartbeat (stale marked)."""
    timeout = request.app.state.settings.heartbeat_timeout
    return workers.list_workers(session, heartbeat_timeout=timeout, include_stopped=all_)
