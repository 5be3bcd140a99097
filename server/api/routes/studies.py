"""Study routes: create, list, get, pause, resume, stop, change the budget, and the
study's trials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

from hpo.schemas import (
    SpecText,
    StudyPublic,
    StudyUpdate,
    TrialDetail,
    TrialPublic,
    TrialSortKey,
    TrialSpec,
    TrialStatus,
)
from hpo.spec import StudySpec, parse_spec_text
from server import studies, trials
from server.api.deps import SchedulerDep, SessionDep, TrialNumber, in_session
from server.auth import require
from server.convert import trial_detail
from server.errors import Conflict, Invalid
from server.scheduler import Scheduler
from server.tables import Study

router = APIRouter(prefix="/studies", tags=["studies"], dependencies=[Depends(require("user"))])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=StudyPublic)
def create_study(spec: StudySpec, session: SessionDep, scheduler: SchedulerDep) -> StudyPublic:
    """Create a study from a spec. 422 names the invalid field; 409 on a duplicate name."""
    study = studies.create_study(session, spec)
    out = studies.study_public(session, study)
    session.commit()
    scheduler.wake()
    return out


@router.post("/parse", response_model=dict[str, Any])
def parse_spec(body: SpecText) -> dict[str, Any]:
    """Turn YAML or JSON spec text into the JSON object ``POST /studies`` takes (syntax
    only: 422 with the line of a YAML error; the create call validates the fields)."""
    try:
        return parse_spec_text(body.text)
    except ValueError as err:
        raise Invalid(str(err), field="text") from None


@router.get("", response_model=list[StudyPublic])
def list_studies(session: SessionDep) -> list[StudyPublic]:
    return [studies.study_public(session, s) for s in studies.list_studies(session)]


@router.get("/{name}", response_model=StudyPublic)
async def get_study(name: str, request: Request) -> StudyPublic:
    """The study with its status counts and best trial."""
    return await in_session(
        request, lambda session: studies.study_public(session, studies.get_study(session, name))
    )


def _change(
    session: Session, scheduler: Scheduler, name: str, change: str | Callable[[Study], Study]
) -> StudyPublic:
    """Apply ``change`` to the study (an action of ``studies.TRANSITIONS``, or a
    function), commit, and wake the scheduler to act on it."""
    study = studies.get_study(session, name)
    if isinstance(change, str):
        study = studies.change_status(session, study, change)
    else:
        study = change(study)
    out = studies.study_public(session, study)
    session.commit()
    scheduler.wake()
    return out


@router.post("/{name}/stop", response_model=StudyPublic)
def stop_study(name: str, session: SessionDep, scheduler: SchedulerDep) -> StudyPublic:
    """Stop a study: queued trials are stopped, running ones are told to stop."""
    return _change(session, scheduler, name, "stop")


@router.post("/{name}/pause", response_model=StudyPublic)
def pause_study(name: str, session: SessionDep, scheduler: SchedulerDep) -> StudyPublic:
    """Pause a running study: no new trials; queued and running ones finish."""
    return _change(session, scheduler, name, "pause")


@router.post("/{name}/resume", response_model=StudyPublic)
def resume_study(name: str, session: SessionDep, scheduler: SchedulerDep) -> StudyPublic:
    """Resume a paused study."""
    return _change(session, scheduler, name, "resume")


@router.patch("/{name}", response_model=StudyPublic)
def update_study(
    name: str, body: StudyUpdate, session: SessionDep, scheduler: SchedulerDep
) -> StudyPublic:
    """Change the budget (``max_trials``, ``max_parallel``); raising ``max_trials`` of a
    completed study runs it again. 422 when ``max_trials`` is below the trials created."""
    return _change(
        session,
        scheduler,
        name,
        lambda s: studies.update_study(
            session, s, max_trials=body.max_trials, max_parallel=body.max_parallel
        ),
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_study(name: str, session: SessionDep) -> Response:
    """Delete a study, its trials and their reports (checkpoints stay on disk)."""
    studies.delete_study(session, studies.get_study(session, name))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/suggest", response_model=list[TrialSpec])
def suggest(
    name: str,
    session: SessionDep,
    scheduler: SchedulerDep,
    request: Request,
    count: Annotated[int, Query(ge=1, le=100, description="Trials to lease.")] = 1,
    client: Annotated[
        str, Query(min_length=1, max_length=200, description="Who runs them (shown as worker).")
    ] = "ask-tell",
) -> list[TrialSpec]:
    """Ask/tell for runners the service does not control, on a study created with
    ``runner: external`` (409 otherwise: its trials go to workers): lease up to
    ``count`` trials (queued ones first, such as retries of expired leases, then new
    suggestions; fewer once the budget is spent). No worker ever runs them. Run each,
    then ``POST /trials/{trial_id}/reports`` per step, ``/heartbeat`` while it runs and
    ``/finish`` at the end with the attempt number given here. A lease expires like a
    worker's: silent past the heartbeat timeout, the trial is retried or failed."""
    study = studies.get_study(session, name)
    if study.runner != "external":
        raise Conflict(
            f"runner: study {name!r} is run by the service's workers (runner: workers); "
            "create it with 'runner: external' to lease its trials through suggest",
            field="runner",
        )
    if study.status != "running":
        raise Conflict(f"study {name!r} is {study.status}: only a running study suggests")
    interval = request.app.state.settings.heartbeat_interval
    leased = []
    for trial_id in scheduler.suggest(session, study, count):
        try:
            leased.append(
                trials.start_trial(session, trial_id, client, heartbeat_interval=interval)
            )
        except Conflict:  # a worker took it first: hand out the others
            continue
    session.commit()
    return leased


@router.get("/{name}/trials", response_model=list[TrialPublic])
async def list_trials(
    name: str,
    request: Request,
    response: Response,
    status_: Annotated[TrialStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    sort: TrialSortKey = "number",
    order: Literal["asc", "desc"] = "asc",
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=2000,
            description="Start after the page whose X-Next-Cursor this is (same sort, "
            "order and status; offset must be 0).",
        ),
    ] = None,
) -> list[TrialPublic]:
    """A page of the study's trials, by ``sort`` then number (nulls last), from
    ``offset`` or after ``cursor``. ``X-Total-Count`` has the total matching
    ``status``; ``X-Next-Cursor``, when another page follows, the cursor of that page
    (keyset paging: as fast at the end of a large study as at its start)."""

    def work(session: Session) -> studies.TrialsPage:
        study = studies.get_study(session, name)
        return studies.list_trials(
            session,
            study,
            status=status_,
            limit=limit,
            offset=offset,
            sort=sort,
            descending=order == "desc",
            cursor=cursor,
        )

    page = await in_session(request, work)
    response.headers["X-Total-Count"] = str(page.total)
    if page.next_cursor is not None:
        response.headers["X-Next-Cursor"] = page.next_cursor
    return page.trials


@router.get("/{name}/trials/{number}", response_model=TrialDetail)
def get_trial(name: str, number: TrialNumber, session: SessionDep) -> TrialDetail:
    """One trial with its reports (the learning curve of every attempt)."""
    study = studies.get_study(session, name)
    trial = trials.get_trial_by_number(session, study, number)
    reports = trials.trial_reports(session, trial)
    return trial_detail(trial, study.name, reports)
