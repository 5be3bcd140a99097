"""Study operations and queries: create, read, summarize, stop.

Every function takes an open session; the caller's transaction (``Database.session``)
commits or rolls back the whole request, so a rejected request writes nothing.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hpo.schemas import StudyPublic, TrialPublic
from hpo.settings import Settings
from hpo.spec import NAME_PATTERN, Objective, StudySpec
from hpo.vocabulary import DEFAULT_PROJECT
from search.registry import full_budget
from search.status import LIVE_STUDY, StudyStatus
from server.convert import trial_public
from server.counts import trial_counts, value_rank
from server.errors import Conflict, Invalid, NotFound
from server.paging import Position, decode_cursor, encode_cursor, page_numbers
from server.tables import LogChunk, Project, Report, Study, Trial, utcnow

log = logging.getLogger(__name__)

__all__ = [
    "TRANSITIONS",
    "Transition",
    "TrialsPage",
    "best_trial",
    "change_status",
    "create_study",
    "delete_artifacts",
    "delete_study",
    "get_study",
    "list_studies",
    "list_trials",
    "status_counts",
    "study_full_budget",
    "study_public",
    "update_study",
]

_NAME = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$"))


def create_study(
    session: Session,
    spec: StudySpec,
    *,
    project_id: int | None = None,
    created_by: str | None = None,
) -> Study:
    """Store a validated spec as a running study of the project (default: the default
    project; who may create it there is the caller's check, ``server.access``). A seed
    is drawn and stored when the spec has none, so the study can be replayed. Study
    names are unique across projects: a duplicate name -> Conflict."""
    if session.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
        raise Conflict(f"name: a study named {spec.name!r} already exists", field="name")
    if project_id is None:
        project_id = session.scalar(select(Project.id).where(Project.name == DEFAULT_PROJECT))
        if project_id is None:
            raise Invalid(f"project: no project named {DEFAULT_PROJECT!r}", field="project")
    if spec.strategy.seed is None:
        spec.strategy.seed = secrets.randbelow(2**31)
    assert spec.objective.direction is not None  # filled in by StudySpec validation
    study = Study(
        name=spec.name,
        project_id=project_id,
        created_by=created_by,
        status="running",
        strategy=spec.strategy.name,
        direction=spec.objective.direction,
        metric=spec.objective.metric,
        seed=spec.strategy.seed,
        max_trials=spec.budget.max_trials,
        max_parallel=spec.budget.max_parallel,
        max_retries=spec.budget.max_retries,
        trial_timeout=spec.budget.trial_timeout,
        runner=spec.runner,
        pool=spec.resources.pool,
        gpus=spec.resources.gpus,
        priority=spec.priority,
        spec=spec.model_dump(mode="json"),
    )
    session.add(study)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create won the race for the name
        raise Conflict(f"name: a study named {spec.name!r} already exists", field="name") from None
    return study


def get_study(session: Session, name: str) -> Study:
    """The study named ``name``; NotFound when there is none (a name no study can have,
    as the spec's name pattern says, is not looked up: the same answer on every
    database, whatever the text holds)."""
    if _NAME.fullmatch(name) is None:
        raise NotFound(f"no study named {name!r}")
    study = session.scalar(select(Study).where(Study.name == name))
    if study is None:
        raise NotFound(f"no study named {name!r}")
    return study


def list_studies(session: Session, projects: set[int] | None = None) -> Sequence[Study]:
    """Studies by id: of the ``projects`` given (None: of every project)."""
    query = select(Study).order_by(Study.id)
    if projects is not None:
        query = query.where(Study.project_id.in_(projects))
    return session.scalars(query).all()


def status_counts(session: Session, study: Study) -> dict[str, int]:
    """The study's trials by status (statuses with none left out): from the count
    mirror (:mod:`server.counts`), exact as of a moment during the call."""
    return trial_counts(session, study)[0]


def study_full_budget(study: Study) -> int | None:
    """The epochs of the study's full-fidelity trials when its strategy gives each
    trial its own budget (Hyperband, ASHA); None when every trial has the whole budget."""
    options = (study.spec.get("strategy") or {}).get("options") or {}
    return full_budget(study.strategy, options)


def best_trial(session: Session, study: Study) -> Trial | None:
    """The completed trial with the best value (ties: the earliest).

    In a multi-fidelity study (Hyperband, ASHA) values at different budgets do not
    compare (a 3-epoch value can beat its own 9-epoch continuation), so the best is
    taken among the trials that trained the full budget; only while none has is it the
    best at any budget (its ``info["budget"]`` then says which)."""
    order = Trial.value.desc() if study.direction == "maximize" else Trial.value.asc()
    query = (
        select(Trial)
        .where(
            Trial.study_id == study.id,
            Trial.status == "completed",
            Trial.value.is_not(None),
        )
        # The null test changes nothing here (nulls are filtered out) but matches the
        # value indexes' leading key, so the best trial is their first entry.
        .order_by(Trial.value.is_(None), order, Trial.number)
        .limit(1)
    )
    full = study_full_budget(study)
    if full is not None:
        # Read in value order from the same index, skipping the lower rungs' trials.
        at_full = session.scalar(query.where(Trial.info["budget"].as_integer() == full))
        if at_full is not None:
            return at_full
    return session.scalar(query)


def _budget_of(trial: Trial, full: int) -> int:
    budget = (trial.info or {}).get("budget")
    return int(budget) if isinstance(budget, int | float) else full


def study_public(session: Session, study: Study) -> StudyPublic:
    counts = status_counts(session, study)
    best = best_trial(session, study)
    full = study_full_budget(study)
    return StudyPublic(
        id=study.id,
        name=study.name,
        status=study.status,
        strategy=study.strategy,
        objective=Objective(metric=study.metric, direction=study.direction),
        max_trials=study.max_trials,
        max_parallel=study.max_parallel,
        counts=counts,
        n_trials=sum(counts.values()),
        best_trial=trial_public(best, study.name) if best else None,
        full_budget=full,
        best_budget=None if best is None or full is None else _budget_of(best, full),
        runner=study.runner,
        reason=study.reason,
        project=study.project.name,
        created_by=study.created_by,
        pool=study.pool,
        priority=study.priority,
        spec=study.spec,
        created_at=study.created_at,
        finished_at=study.finished_at,
    )


@dataclass(frozen=True)
class TrialsPage:
    """A page of trials, how many match the filter in all, and the cursor of the next
    page (None: this is the last)."""

    trials: list[TrialPublic]
    total: int
    next_cursor: str | None


def list_trials(
    session: Session,
    study: Study,
    *,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    sort: str = "number",
    descending: bool = False,
    cursor: str | None = None,
) -> TrialsPage:
    """A page of trials ordered by ``sort`` (a ``TrialSortKey``; ties and nulls in
    number order, nulls last either way): from ``offset``, or after ``cursor`` (a
    previous page's ``next_cursor``; see :mod:`server.paging`, Invalid when it does not
    fit), with the total matching count.

    The page's trial numbers are chosen first (an index-only scan on the indexed keys:
    number, value either way) and only its rows are loaded. The total comes from the
    study's count mirror (:mod:`server.counts`); while that knows the study's trials are
    numbered 0..N, an offset page by number starts at its number, and one by value
    after the value the mirror has at ``offset - 1``, instead of skipping ``offset``
    index entries."""
    after = None
    if cursor is not None:
        if offset:
            raise Invalid("offset: must be 0 with a cursor", field="offset")
        dialect = session.get_bind().dialect.name
        after = decode_cursor(
            cursor, sort=sort, descending=descending, status=status, dialect=dialect
        )
    counts, dense_max = trial_counts(session, study)
    total = counts.get(status, 0) if status is not None else sum(counts.values())
    if after is None and sort == "number" and status is None and dense_max is not None:
        # Trials 0..dense_max: the offset-th in number order is number offset.
        start = dense_max + 1 - offset if descending else offset - 1
        after, offset = Position(None, start), 0
    where = [Trial.study_id == study.id]
    if status is not None:
        where.append(Trial.status == status)
    if after is None and sort == "value" and status is None and offset > 0:
        # The row before the page, from the mirror's sorted values: a keyset page
        # instead of skipping ``offset`` index entries; past the values, the offset
        # among the nulls only.
        at = value_rank(session, study, offset - 1, descending=descending)
        if isinstance(at, tuple):
            after, offset = Position(*at), 0
        elif at is not None:
            where.append(Trial.value.is_(None))
            offset = at + 1
    rows = page_numbers(
        session, where, sort=sort, descending=descending, limit=limit, offset=offset, after=after
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        number, key = rows[-1]
        next_cursor = encode_cursor(sort, descending, status, Position(key, number))
    where_page = (Trial.study_id == study.id, Trial.number.in_([n for n, _ in rows]))
    by_number = {t.number: t for t in session.scalars(select(Trial).where(*where_page))}
    trials: list[TrialPublic] = [
        trial_public(by_number[n], study.name) for n, _ in rows if n in by_number
    ]
    return TrialsPage(trials, total, next_cursor)


@dataclass(frozen=True)
class Transition:
    """What a user's action does to a study's status: from ``sources`` to ``to``. A
    study already at ``to`` is left as it is (the action is idempotent); one in any
    other status is refused with ``refusal``."""

    to: StudyStatus
    sources: frozenset[str]
    refusal: str


#: Every status change a user asks for (the scheduler's own, to completed or failed,
#: happen when a study's budget is spent or it fails fast).
TRANSITIONS: Mapping[str, Transition] = MappingProxyType(
    {
        # No new trials; its queued and running trials go on to the end.
        "pause": Transition("paused", frozenset({"running"}), "only a running study pauses"),
        # A completed study continues by raising its ``max_trials`` instead.
        "resume": Transition("running", frozenset({"paused"}), "only a paused study resumes"),
        # No new trials; queued ones are stopped now, running ones told at their next
        # report. Final.
        "stop": Transition("stopped", LIVE_STUDY, "only a running or paused study stops"),
    }
)


def change_status(session: Session, study: Study, action: str) -> Study:
    """Apply the user's ``action`` (a key of :data:`TRANSITIONS`) to the study; a
    study it does not apply to -> Conflict."""
    transition = TRANSITIONS[action]
    if study.status == transition.to:
        return study
    if study.status not in transition.sources:
        raise Conflict(f"study {study.name!r} is {study.status}: {transition.refusal}")
    study.status = transition.to
    if transition.to == "stopped":
        now = study.finished_at = utcnow()
        session.execute(
            update(Trial)
            .where(Trial.study_id == study.id, Trial.status == "queued")
            .values(status="stopped", finished_at=now, error="study stopped")
        )
    return study


def update_study(
    session: Session, study: Study, *, max_trials: int | None, max_parallel: int | None
) -> Study:
    """Change a study's budget. ``max_trials`` may not drop below the trials already
    created (422 naming the field); raising it reopens a completed study. A stopped
    or failed study keeps its budget (Conflict): both are final."""
    if study.status in ("stopped", "failed"):
        raise Conflict(
            f"study {study.name!r} is {study.status}: its budget can no longer change"
            + (f" ({study.reason})" if study.reason else "")
        )
    spec = dict(study.spec)
    budget = dict(spec.get("budget") or {})
    if max_trials is not None:
        created = (
            session.scalar(
                select(func.count()).select_from(Trial).where(Trial.study_id == study.id)
            )
            or 0
        )
        if max_trials < created:
            raise Invalid(
                f"max_trials: {max_trials} is below the {created} trial(s) already created",
                field="max_trials",
            )
        study.max_trials = budget["max_trials"] = max_trials
        if study.status == "completed" and max_trials > created:
            study.status, study.finished_at = "running", None
    if max_parallel is not None:
        study.max_parallel = budget["max_parallel"] = max_parallel
    spec["budget"] = budget
    study.spec = spec  # a new dict, so the JSON column is written
    return study


def delete_study(session: Session, study: Study) -> None:
    """Delete a study with its trials and their reports (one transaction). Workers
    still running its trials are refused at their next call (404) and move on."""
    trial_ids = select(Trial.id).where(Trial.study_id == study.id)
    session.execute(delete(Report).where(Report.trial_id.in_(trial_ids)))
    session.execute(delete(LogChunk).where(LogChunk.trial_id.in_(trial_ids)))
    session.execute(delete(Trial).where(Trial.study_id == study.id))
    session.execute(delete(Study).where(Study.id == study.id))


def delete_artifacts(settings: Settings, name: str) -> None:
    """Remove a deleted study's folder from the artifact store (local and, with
    ``HPO_ARTIFACT_URL``, the object store). Never raises: the study is gone already;
    a store that cannot be reached leaves its files, and says so in the log."""
    try:
        settings.artifact_store().delete_folder(name)
    except Exception:
        log.exception("deleting the artifacts of study %s failed; remove %s/ by hand", name, name)
