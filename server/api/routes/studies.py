"""Study routes: create, list, get, pause, resume, stop, change the budget, and the
study's trials."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

from hpo.logs import TrialLog
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
from server import (
    access,
    actions,
    insights,
    logs,
    pools,
    projects,
    studies,
    trial_filter,
    trials,
)
from server.api.deps import SchedulerDep, SessionDep, TrialNumber, in_session
from server.api.routes.trials import After, Attempt
from server.auth import IdentityDep, auth_enabled, require
from server.convert import trial_detail
from server.errors import Conflict, Invalid
from server.scheduler import Scheduler
from server.tables import Study

router = APIRouter(prefix="/studies", tags=["studies"], dependencies=[Depends(require("user"))])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=StudyPublic)
def create_study(
    spec: StudySpec,
    session: SessionDep,
    scheduler: SchedulerDep,
    identity: IdentityDep,
    request: Request,
) -> StudyPublic:
    """Create a study from a spec in its project (member or owner). 422 names the
    invalid field (``project`` for a project you are no member of,
    ``train.entrypoint`` for code the project may not run); 409 on a duplicate name."""
    study = actions.create_study(
        session,
        identity,
        spec,
        check_entrypoints=auth_enabled(request),
        local_only=scheduler.queue.owns_workers,
        heartbeat_timeout=request.app.state.settings.heartbeat_timeout,
    )
    return _committed(session, scheduler, study)


@router.post("/parse", response_model=dict[str, Any])
def parse_spec(body: SpecText) -> dict[str, Any]:
    """Turn YAML or JSON spec text into the JSON object ``POST /studies`` takes (syntax
    only: 422 with the line of a YAML error; the create call validates the fields)."""
    try:
        return parse_spec_text(body.text)
    except ValueError as err:
        raise Invalid(str(err), field="text") from None


@router.get("", response_model=list[StudyPublic])
def list_studies(
    session: SessionDep,
    identity: IdentityDep,
    project: Annotated[
        str | None, Query(min_length=1, max_length=128, description="Only this project's.")
    ] = None,
) -> list[StudyPublic]:
    """The studies of every project you belong to (admin: of every project)."""
    visible = access.visible_projects(session, identity)
    if project is not None:
        wanted = projects.get_project(session, project).id
        visible = {wanted} if visible is None or wanted in visible else set()
    return [studies.study_public(session, s) for s in studies.list_studies(session, visible)]


@router.get("/{name}", response_model=StudyPublic)
async def get_study(name: str, request: Request, identity: IdentityDep) -> StudyPublic:
    """The study with its status counts and best trial."""
    timeout = request.app.state.settings.heartbeat_timeout

    def answer(session: Session) -> StudyPublic:
        study = access.get_study(session, identity, name)
        public = studies.study_public(session, study)
        public.waiting = pools.waiting_reason(session, study, timeout)
        return public

    return await in_session(request, answer)


def _committed(session: Session, scheduler: Scheduler, study: Study) -> StudyPublic:
    """The changed study's answer, committed, with the scheduler woken to act on it."""
    out = studies.study_public(session, study)
    session.commit()
    scheduler.wake()
    return out


@router.post("/{name}/stop", response_model=StudyPublic)
def stop_study(
    name: str, session: SessionDep, scheduler: SchedulerDep, identity: IdentityDep
) -> StudyPublic:
    """Stop a study: queued trials are stopped, running ones are told to stop."""
    return _committed(session, scheduler, actions.change_status(session, identity, name, "stop"))


@router.post("/{name}/pause", response_model=StudyPublic)
def pause_study(
    name: str, session: SessionDep, scheduler: SchedulerDep, identity: IdentityDep
) -> StudyPublic:
    """Pause a running study: no new trials; queued and running ones finish."""
    return _committed(session, scheduler, actions.change_status(session, identity, name, "pause"))


@router.post("/{name}/resume", response_model=StudyPublic)
def resume_study(
    name: str, session: SessionDep, scheduler: SchedulerDep, identity: IdentityDep
) -> StudyPublic:
    """Resume a paused study."""
    return _committed(session, scheduler, actions.change_status(session, identity, name, "resume"))


@router.patch("/{name}", response_model=StudyPublic)
def update_study(
    name: str,
    body: StudyUpdate,
    session: SessionDep,
    scheduler: SchedulerDep,
    identity: IdentityDep,
) -> StudyPublic:
    """Change the budget (``max_trials``, ``max_parallel``); raising ``max_trials`` of a
    completed study runs it again. 422 when ``max_trials`` is below the trials created."""
    study = actions.change_budget(
        session, identity, name, max_trials=body.max_trials, max_parallel=body.max_parallel
    )
    return _committed(session, scheduler, study)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_study(
    name: str, session: SessionDep, identity: IdentityDep, request: Request
) -> Response:
    """Delete a study, its trials and their reports, then its artifacts (checkpoints,
    trial files) in the artifact store, local or object storage."""
    actions.delete_study(session, identity, name)
    session.commit()  # the rows first: files of a study that still exists are never lost
    studies.delete_artifacts(request.app.state.settings, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/suggest", response_model=list[TrialSpec])
def suggest(
    name: str,
    session: SessionDep,
    scheduler: SchedulerDep,
    request: Request,
    identity: IdentityDep,
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
    study = access.get_study(session, identity, name, need="member")
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
    identity: IdentityDep,
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
    metrics: Annotated[
        bool, Query(description="Add each trial's last reported metrics (one query more).")
    ] = False,
    param: Annotated[
        list[str] | None,
        Query(
            max_length=50,
            description="Only trials whose parameter is in a range (name:low:high, either end "
            "may be empty) or has a value (name=value); repeat for several.",
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Only trials whose number, parameters, error or worker contain this.",
        ),
    ] = None,
) -> list[TrialPublic]:
    """A page of the study's trials, by ``sort`` then number (nulls last), from
    ``offset`` or after ``cursor``. ``X-Total-Count`` has the total matching
    ``status``; ``X-Next-Cursor``, when another page follows, the cursor of that page
    (keyset paging: as fast at the end of a large study as at its start)."""

    filters = trial_filter.parse_filters(param or [])
    if (filters or q) and cursor is not None:
        raise Invalid("cursor: not with param or q filters (page them by offset)", field="cursor")

    def work(session: Session) -> studies.TrialsPage:
        study = access.get_study(session, identity, name)
        if filters or q:
            found, total = trial_filter.filter_trials(
                session,
                study,
                status=status_,
                filters=filters,
                search=q,
                sort=sort,
                descending=order == "desc",
                limit=limit,
                offset=offset,
            )
            page = studies.TrialsPage(found, total, None)
        else:
            page = studies.list_trials(
                session,
                study,
                status=status_,
                limit=limit,
                offset=offset,
                sort=sort,
                descending=order == "desc",
                cursor=cursor,
            )
        if metrics:
            last = insights.last_metrics(session, [t.id for t in page.trials])
            for t in page.trials:
                t.metrics = last.get(t.id, {})
        return page

    page = await in_session(request, work)
    response.headers["X-Total-Count"] = str(page.total)
    if page.next_cursor is not None:
        response.headers["X-Next-Cursor"] = page.next_cursor
    return page.trials


@router.get("/{name}/trials/{number}", response_model=TrialDetail)
def get_trial(
    name: str, number: TrialNumber, session: SessionDep, identity: IdentityDep
) -> TrialDetail:
    """One trial with its reports (the learning curve of every attempt)."""
    study = access.get_study(session, identity, name)
    trial = trials.get_trial_by_number(session, study, number)
    reports = trials.trial_reports(session, trial)
    return trial_detail(trial, study.name, reports)


@router.get("/{name}/trials/{number}/logs", response_model=TrialLog)
def get_trial_log(
    name: str,
    number: TrialNumber,
    session: SessionDep,
    identity: IdentityDep,
    attempt: Attempt = None,
    after: After = 0,
) -> TrialLog:
    """What an attempt of the trial printed (stdout and stderr, tracebacks included),
    from byte ``after`` on: poll with ``after=next_position`` to follow it live."""
    study = access.get_study(session, identity, name)
    trial = trials.get_trial_by_number(session, study, number)
    return logs.read_log(session, trial, attempt, after)
