"""FastAPI dependencies, as ``Annotated`` aliases routes declare in their signatures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hpo.vocabulary import Role
from server import access
from server.auth import IdentityDep
from server.db import Database
from server.scheduler import Scheduler

__all__ = [
    "MAX_ID",
    "SchedulerDep",
    "SessionDep",
    "TrialId",
    "TrialNumber",
    "in_session",
    "trial_access",
]

T = TypeVar("T")


def _session(request: Request) -> Iterator[Session]:
    db: Database = request.app.state.db
    with db.session() as session:
        yield session


async def _scheduler(request: Request) -> Scheduler:
    # async: a sync dependency costs a worker-thread round trip per request
    return request.app.state.scheduler


async def in_session(request: Request, work: Callable[[Session], T]) -> T:
    """Run ``work(session)`` in one worker-thread hop: a new session, committed when
    ``work`` returns (before the response goes out), rolled back when it raises.

    For the hot routes (the worker's start / report / finish): a ``SessionDep`` route
    costs three hops (session open, the endpoint, commit), this one.
    """
    db: Database = request.app.state.db

    def unit() -> T:
        with db.session() as session:
            return work(session)

    return await run_in_threadpool(unit)


# scope="function": the session commits (or rolls back) when the route returns, before
# the response is sent, so a client never sees success for a write that did not land.
SessionDep = Annotated[Session, Depends(_session, scope="function")]
SchedulerDep = Annotated[Scheduler, Depends(_scheduler)]

#: Largest id or trial number: the columns are 32-bit integers (PostgreSQL INTEGER;
#: two billion trials is more than any study needs). A larger path value is answered
#: 422 naming the parameter, on every database alike, instead of reaching the driver.
MAX_ID = 2**31 - 1
TrialId = Annotated[int, Path(ge=1, le=MAX_ID, description="Trial id.")]
TrialNumber = Annotated[int, Path(ge=0, le=MAX_ID, description="Trial number in its study.")]


def trial_access(need: Role) -> Callable[..., Awaitable[None]]:
    """A dependency of the routes by trial id: a user's token needs the role ``need``
    in the trial's project (404 for a non-member, 403 for a weaker role). Workers and
    admins pass without a query, so the hot path of reports costs nothing more."""

    async def check(trial_id: TrialId, request: Request, identity: IdentityDep) -> None:
        if identity.unrestricted:
            return
        await in_session(
            request, lambda session: access.check_trial(session, identity, trial_id, need)
        )

    return check
