"""FastAPI dependencies, as ``Annotated`` aliases routes declare in their signatures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from server.db import Database
from server.scheduler import Scheduler

__all__ = ["MAX_ID", "SchedulerDep", "SessionDep", "TrialId", "TrialNumber"]


def _session(request: Request) -> Iterator[Session]:
    db: Database = request.app.state.db
    with db.session() as session:
        yield session


def _scheduler(request: Request) -> Scheduler:
    return request.app.state.scheduler


# scope="function": the session commits (or rolls back) when the route returns, before
# the response is sent, so a client never sees success for a write that did not land.
SessionDep = Annotated[Session, Depends(_session, scope="function")]
SchedulerDep = Annotated[Scheduler, Depends(_scheduler)]

#: Largest id a database integer column holds (SQLite and PostgreSQL BIGINT): larger
#: path values are answered 422 instead of overflowing the driver.
MAX_ID = 2**63 - 1
TrialId = Annotated[int, Path(ge=1, le=MAX_ID, description="Trial id.")]
TrialNumber = Annotated[int, Path(ge=0, le=MAX_ID, description="Trial number in its study.")]
